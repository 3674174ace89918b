using System.Net.Sockets;
using BlockDriver.Containerd.Api;
using BlockDriver.Interop;
using BlockDriver.Mount;
using Grpc.Core;
using Grpc.Net.Client;
using Xunit.Abstractions;

namespace BlockDriver.Containerd.Tests;

/// <summary>A temp dir with a store and a real <c>blockdriver daemon --containerd-socket</c> on it (1 GiB snapshots),
/// and a gRPC client of its Snapshots service through the socket. Disposing stops the daemon, then undoes by hand
/// whatever is left under the temp dir (file system mounts, loop devices, the FUSE mount) and deletes it.</summary>
internal sealed class SnapshotterDaemon : IAsyncDisposable
{
    public const long Capacity = 1L << 30;
    /// <summary>The CLI the daemon runs from (dotnet <see cref="Dotnet"/>).</summary>
    public static readonly string CliPath = Path.Combine(AppContext.BaseDirectory, "blockdriver.dll");
    private readonly TempDirectory _temp = new("containerd");
    private GrpcChannel? _channel;
    private DaemonProcess? _daemon;
    private ITestOutputHelper? _output;

    public string Root => _temp.GetFilePath("store");

    public string Socket => _temp.GetFilePath("snapshotter.sock");

    public string TempDir => _temp.FullName;

    public Snapshots.SnapshotsClient Client { get; private set; } = null!;

    public DaemonProcess Daemon => _daemon ?? throw new InvalidOperationException("No daemon runs.");

    /// <summary>Where the daemon's output goes: the running test's output.</summary>
    public ITestOutputHelper? Output
    {
        get => _output;
        set
        {
            _output = value;
            if (_daemon is not null)
            {
                _daemon.Output = value;
            }
        }
    }

    public string Dir(string name) => _temp.GetFilePath(name);

    /// <summary>Starts the daemon and waits until it is ready.</summary>
    public void Start()
    {
        _daemon = DaemonProcess.Start("blockdriver", Dotnet,
            [CliPath, "--root", Root, "daemon", "--containerd-socket", Socket, $"--Containerd:Capacity={Capacity}", "--Logging:LogLevel:BlockDriver.Containerd=Debug"], _output);
        _daemon.WaitForLine("ready:", TimeSpan.FromSeconds(90));
        _channel?.Dispose();
        string socket = Socket;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), ct);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        };
        _channel = GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
        Client = new Snapshots.SnapshotsClient(_channel);
    }

    /// <summary>SIGTERM; asserts a clean exit.</summary>
    public async Task StopAsync()
    {
        DaemonProcess daemon = Daemon;
        int code = await daemon.TerminateAsync();
        Assert.True(code == 0, $"the daemon exited with {code}:\n{daemon.AllOutput}");
        daemon.Dispose();
        _daemon = null;
    }

    /// <summary>SIGKILL: the daemon leaves its devices and FUSE mount for the next start to clean.</summary>
    public async Task KillAsync()
    {
        DaemonProcess daemon = Daemon;
        await daemon.KillAsync();
        daemon.Dispose();
        _daemon = null;
    }

    /// <summary>Mounts, loop devices and processes that refer to this test's directory; while the daemon runs, its
    /// own FUSE mount, loop devices and process are not counted.</summary>
    public IReadOnlyList<string> Leftovers()
    {
        string prefix = _temp.FullName + "/";
        bool running = _daemon is { HasExited: false };
        return
        [
            .. MountInfoEntry.ReadAll()
                .Where(e => (e.MountPoint.StartsWith(prefix, StringComparison.Ordinal) || e.Source.StartsWith(prefix, StringComparison.Ordinal)) && !(running && e.IsFuse))
                .Select(e => $"mount {e.FileSystemType} {e.Source} at {e.MountPoint}"),
            .. running ? [] : LoopDevice.ListBound()
                .Where(b => b.BackingFile.StartsWith(prefix, StringComparison.Ordinal))
                .Select(b => $"/dev/loop{b.Index} -> {b.BackingFile}"),
            .. HostLeaks.Processes(_temp.FullName).Where(p => p.Pid != _daemon?.Pid).Select(p => $"process {p.Pid}: {p.CommandLine}"),
        ];
    }

    /// <summary>Loop devices bound to the store's FUSE files, as /dev/loopN.</summary>
    public IReadOnlyList<string> LoopDevices() =>
        [.. LoopDevice.ListBound().Where(b => b.BackingFile.StartsWith(_temp.FullName + "/", StringComparison.Ordinal)).Select(b => $"/dev/loop{b.Index}")];

    public async ValueTask DisposeAsync()
    {
        var failures = new List<Exception>();
        async Task Step(Func<Task> step)
        {
            try
            {
                await step();
            }
            catch (Exception ex)
            {
                failures.Add(ex);
            }
        }

        _channel?.Dispose();
        if (_daemon is { HasExited: false } daemon)
        {
            await Step(async () => await daemon.TerminateAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        }

        await Step(() =>
        {
            _daemon?.Dispose();
            return Task.CompletedTask;
        });
        await Step(() =>
        {
            HostLeaks.RemoveOrThrow(_temp.FullName);
            return Task.CompletedTask;
        });
        await Step(() =>
        {
            _temp.Dispose();
            return Task.CompletedTask;
        });
        if (failures.Count > 0)
        {
            throw new AggregateException("Cleaning up a containerd test directory failed.", failures);
        }
    }

    public static async Task<ProcessResult> Run(string program, params string[] args)
    {
        ProcessResult result = await ChildProcess.RunAsync(program, args, "/");
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} exited with {result.ExitCode}: {result}");
        }

        return result;
    }

    /// <summary>The dotnet host that runs <see cref="CliPath"/>.</summary>
    public static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? ChildProcess.Locate("dotnet") ?? "dotnet";
}

/// <summary>Assertions on gRPC failures.</summary>
internal static class Rpc
{
    public static async Task<RpcException> FailsWith(StatusCode code, Func<Task> call)
    {
        RpcException ex = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(ex.StatusCode == code, $"expected {code}, got {ex.StatusCode}: {ex.Status.Detail}");
        return ex;
    }
}
