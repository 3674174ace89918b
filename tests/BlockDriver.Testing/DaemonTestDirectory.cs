using Xunit.Abstractions;

namespace BlockDriver.Testing;

/// <summary>A temp directory holding a store (STORE) and the real <c>blockdriver</c> CLI run on it: one-shot commands
/// and <c>blockdriver --root STORE daemon</c> processes. Disposing kills every daemon still running, removes what they
/// left on the host (<see cref="HostLeaks"/>: mounts, loop devices, processes under the directory) and deletes the
/// directory, so a failed test leaks nothing. The daemon and Docker plugin suites build their stores on it.</summary>
public abstract class DaemonTestDirectory : IAsyncDisposable
{
    private static readonly string CliPath = Path.Combine(AppContext.BaseDirectory, "blockdriver.dll");
    private readonly TempDirectory _temp;
    private readonly List<DaemonProcess> _daemons = [];

    /// <summary>A new directory /tmp/blockdriver-PREFIX-XXXXXX; <paramref name="output"/> gets the CLI's and the
    /// daemons' lines.</summary>
    protected DaemonTestDirectory(string prefix, ITestOutputHelper output)
    {
        _temp = new TempDirectory(prefix);
        Output = output;
    }

    /// <summary>The store: DIR/store.</summary>
    public string Root => _temp.GetFilePath("store");

    /// <summary>The test's output.</summary>
    protected ITestOutputHelper Output { get; }

    /// <summary>A path in the directory (not created).</summary>
    public string Dir(string name) => _temp.GetFilePath(name);

    /// <summary>Runs <c>blockdriver --root STORE ARGS</c> to completion.</summary>
    public async Task<ProcessResult> CliAsync(params string[] args)
    {
        ProcessResult result = await ChildProcess.RunAsync(Dotnet, [CliPath, "--root", Root, .. args], _temp.FullName);
        Output.WriteLine($"$ blockdriver {string.Join(' ', args)}\n{result}");
        return result;
    }

    /// <summary>Mounts and loop devices that refer to this directory.</summary>
    public IReadOnlyList<string> Leftovers() => HostLeaks.Devices(_temp.FullName);

    /// <summary>Kills the daemons still running, removes what they left, deletes the directory; every step is tried
    /// and the failures are thrown together.</summary>
    public virtual async ValueTask DisposeAsync()
    {
        var failures = new List<Exception>();
        foreach (Action step in _daemons.Select(d => (Action)d.Dispose).Append(() => HostLeaks.RemoveOrThrow(_temp.FullName)).Append(_temp.Dispose))
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

        GC.SuppressFinalize(this);
        await Task.CompletedTask;
        if (failures.Count > 0)
        {
            throw new AggregateException($"Cleaning up {_temp.FullName} failed.", failures);
        }
    }

    /// <summary>Starts <c>blockdriver --root STORE daemon ARGS</c> and waits until it logs that it is ready.</summary>
    protected DaemonProcess StartDaemonProcess(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var daemon = DaemonProcess.Start("daemon", Dotnet, [CliPath, "--root", Root, "daemon", .. args], Output, environment);
        _daemons.Add(daemon);
        daemon.WaitForLine("ready:", TimeSpan.FromSeconds(60));
        return daemon;
    }

    private static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? ChildProcess.Locate("dotnet") ?? "dotnet";
}
