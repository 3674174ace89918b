namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>
/// A containerd of its own for a dockerd that stores images through a containerd snapshotter (dockerd
/// <c>--containerd SOCKET</c>): everything under one directory (<c>root/</c>, <c>state/</c>, <c>containerd.sock</c>,
/// <c>config.toml</c>), the CRI plugin and the snapshotters this host cannot run disabled, and the blockdriver
/// daemon's snapshotter declared as <c>[proxy_plugins.blockdriver]</c>, as a user of Docker ≥ 29 configures it.
/// </summary>
internal sealed class ExternalContainerd : IDisposable
{
    private readonly Action<string> _log;
    private readonly string _program;
    private readonly IReadOnlyDictionary<string, string> _environment;
    private LoggedProcess? _process;

    public ExternalContainerd(string directory, string program, IReadOnlyDictionary<string, string> environment, Action<string> log)
    {
        Directory = directory;
        _program = program;
        _environment = environment;
        _log = log;
    }

    public string Directory { get; }

    public string Socket => Path.Combine(Directory, "containerd.sock");

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>What containerd printed.</summary>
    public string Log => _process?.Output ?? "";

    /// <summary>Writes the config naming <paramref name="snapshotterSocket"/> as proxy plugin
    /// <paramref name="snapshotter"/>, starts containerd and waits for its socket.</summary>
    public async Task StartAsync(string snapshotter, string snapshotterSocket)
    {
        System.IO.Directory.CreateDirectory(Directory);
        string config = Path.Combine(Directory, "config.toml");
        await File.WriteAllTextAsync(config, $"""
            version = 2
            root = "{Directory}/root"
            state = "{Directory}/state"
            disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

            [grpc]
              address = "{Socket}"

            [ttrpc]
              address = "{Socket}.ttrpc"

            [proxy_plugins]
              [proxy_plugins.{snapshotter}]
                type = "snapshot"
                address = "{snapshotterSocket}"
            """).ConfigureAwait(false);
        _process = LoggedProcess.Start("containerd", _program, ["--config", config], _log, _environment);
        await _process.WaitUntilAsync(() => Task.FromResult(File.Exists(Socket) && _process.Output.Contains("containerd successfully booted", StringComparison.Ordinal)),
            $"a listening {Socket}", TimeSpan.FromSeconds(60)).ConfigureAwait(false);
    }

    /// <summary>SIGTERM, SIGKILL after 30 s; the exit code, null when killed or not running.</summary>
    public async Task<int?> StopAsync()
    {
        if (_process is null || _process.HasExited)
        {
            return null;
        }

        int? code = await _process.StopAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        _log($"containerd exited: {(code is null ? "killed" : code.ToString())}");
        return code;
    }

    public void Dispose() => _process?.Dispose();
}
