using BlockDriver.Core;
using BlockDriver.Mount;
using Xunit.Abstractions;

namespace BlockDriver.Daemon.Tests;

/// <summary>A temp dir holding a store with a 256 MiB base file system layer and a writable container layer "c1" over
/// it (made through the Core API before any daemon starts), plus helpers to run the real <c>blockdriver</c>. Disposing
/// kills a daemon still running, then undoes by hand whatever it left (file system mounts under the temp dir, loop
/// devices on its files, the FUSE mount) and deletes the directory.</summary>
internal sealed class DaemonTestStore : IAsyncDisposable
{
    public const string TempPrefix = "daemontest";
    private static readonly string CliPath = Path.Combine(AppContext.BaseDirectory, "blockdriver.dll");
    private readonly TempDirectory _temp;
    private readonly ITestOutputHelper _output;
    private readonly List<DaemonProcess> _daemons = [];

    private DaemonTestStore(TempDirectory temp, ITestOutputHelper output)
    {
        _temp = temp;
        _output = output;
    }

    public string Root => _temp.GetFilePath("store");

    public string Dir(string name) => _temp.GetFilePath(name);

    public static async Task<DaemonTestStore> CreateAsync(ITestOutputHelper output)
    {
        var test = new DaemonTestStore(new TempDirectory(TempPrefix), output);
        try
        {
            LayerStore store = await LayerStore.OpenAsync(test.Root, create: true);
            await using (store)
            {
                var mounter = new LayerMounter(store);
                await using (mounter)
                {
                    await BaseFilesystem.EnsureAsync(store, mounter, capacity: 256L << 20);
                }

                await store.CreateAsync(new LayerSpec { Id = "c1", Parent = BaseFilesystem.LayerId, Kind = LayerKind.Container });
            }

            return test;
        }
        catch
        {
            await test.DisposeAsync();
            throw;
        }
    }

    /// <summary>Runs <c>blockdriver --root STORE ARGS</c> to completion.</summary>
    public async Task<ProcessResult> CliAsync(params string[] args)
    {
        ProcessResult result = await ChildProcess.RunAsync(Dotnet, [CliPath, "--root", Root, .. args], _temp.FullName);
        _output.WriteLine($"$ blockdriver {string.Join(' ', args)}\n{result}");
        return result;
    }

    /// <summary>Starts <c>blockdriver --root STORE daemon ARGS</c> and waits until it logs that it is ready.</summary>
    public DaemonProcess StartDaemon(IReadOnlyDictionary<string, string>? environment = null, params string[] args)
    {
        var daemon = DaemonProcess.Start("daemon", Dotnet, [CliPath, "--root", Root, "daemon", .. args], _output, environment);
        _daemons.Add(daemon);
        daemon.WaitForLine("ready:", TimeSpan.FromSeconds(60));
        return daemon;
    }

    /// <summary>Mounts and loop devices that refer to this test's directory.</summary>
    public IReadOnlyList<string> Leftovers() => HostLeaks.Devices(_temp.FullName);

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

        foreach (DaemonProcess daemon in _daemons)
        {
            Step(daemon.Dispose);
        }

        Step(() => HostLeaks.RemoveOrThrow(_temp.FullName));
        Step(_temp.Dispose);
        await Task.CompletedTask;
        if (failures.Count > 0)
        {
            throw new AggregateException("Cleaning up a daemon test store failed.", failures);
        }
    }

    private static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? ChildProcess.Locate("dotnet") ?? "dotnet";
}
