using BlockDriver.Fuse;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>A temp dir for one plugin test: an empty store (STORE), the plugin socket (SOCK) and a way to run the
/// real <c>blockdriver --root STORE daemon --docker --Docker:Socket=SOCK</c> with 256 MiB layers. Disposing kills a
/// daemon still running, then undoes by hand whatever it left (file system mounts under the temp dir, loop devices
/// on its files, the FUSE mount) and deletes the directory, so a failed test leaks nothing either.</summary>
internal sealed class PluginTestStore : IAsyncDisposable
{
    public const string BaseSize = "256M";
    public const long Capacity = 256L << 20;
    private static readonly string CliPath = Path.Combine(AppContext.BaseDirectory, "blockdriver.dll");
    private readonly TempDirectory _temp;
    private readonly ITestOutputHelper _output;
    private readonly List<DaemonProcess> _daemons = [];
    private readonly List<PluginClient> _clients = [];

    private PluginTestStore(ITestOutputHelper output)
    {
        _temp = new TempDirectory("dockertest");
        _output = output;
    }

    public string Root => _temp.GetFilePath("store");

    public string SocketPath => _temp.GetFilePath("plugin.sock");

    public string Dir(string name) => _temp.GetFilePath(name);

    public static PluginTestStore Create(ITestOutputHelper output) => new(output);

    /// <summary>Starts the daemon with the plugin (Debug logging for it) and waits until it is ready. The last Put
    /// unmounts at once (<c>Docker:UnmountDelay=0</c>) unless <paramref name="args"/> set another delay (the lingering
    /// mount tests; the end-to-end tests run with the default).</summary>
    public DaemonProcess StartDaemon(params string[] args)
    {
        DaemonProcess daemon = DaemonProcess.Start("daemon", Dotnet,
            [CliPath, "--root", Root, "daemon", "--docker", $"--Docker:Socket={SocketPath}", $"--Docker:BaseSize={BaseSize}",
                "--Logging:LogLevel:BlockDriver.Docker=Debug", "--Docker:UnmountDelay=0", .. args], _output);
        _daemons.Add(daemon);
        daemon.WaitForLine("ready:", TimeSpan.FromSeconds(60));
        return daemon;
    }

    /// <summary>A client of the plugin socket, disposed with the store.</summary>
    public PluginClient Client()
    {
        var client = new PluginClient(SocketPath);
        _clients.Add(client);
        return client;
    }

    /// <summary>Mounts and loop devices that refer to this test's directory.</summary>
    public IReadOnlyList<string> Leftovers() => HostLeaks.Devices(_temp.FullName);

    /// <summary>The file system mounts (not the FUSE mount) under the store's mnt/ directory.</summary>
    public IReadOnlyList<string> LayerMounts() =>
        [.. MountInfoEntry.ReadAll().Where(e => e.MountPoint.StartsWith(Root + "/mnt/", StringComparison.Ordinal)).Select(e => e.MountPoint)];

    /// <summary>Stops the daemon with SIGTERM, checks it exited cleanly, removed the plugin socket and left nothing
    /// mounted or attached.</summary>
    public async Task StopAndCheckAsync(DaemonProcess daemon)
    {
        Assert.Equal(0, await daemon.TerminateAsync());
        Assert.False(File.Exists(SocketPath), "the plugin socket outlived the daemon");
        Assert.Empty(Leftovers());
    }

    public async ValueTask DisposeAsync()
    {
        var failures = new List<Exception>();
        void Step(Action step)
        {
            try
            {
                step();
            }
            catch (Exception ex)
            {
                failures.Add(ex);
            }
        }

        foreach (PluginClient client in _clients)
        {
            Step(client.Dispose);
        }

        foreach (DaemonProcess daemon in _daemons)
        {
            Step(daemon.Dispose);
        }

        Step(() => HostLeaks.RemoveOrThrow(_temp.FullName));
        Step(_temp.Dispose);
        await Task.CompletedTask;
        if (failures.Count > 0)
        {
            throw new AggregateException("Cleaning up a plugin test store failed.", failures);
        }
    }

    private static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? ChildProcess.Locate("dotnet") ?? "dotnet";
}
