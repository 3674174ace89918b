using System.Net.Sockets;

namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>
/// The real <c>blockdriver --root STORE daemon --docker</c> (blockdriver.dll beside this assembly, run by dotnet)
/// serving the graphdriver plugin <see cref="PluginName"/> on <c>/run/docker/plugins/NAME.sock</c>, where dockerd's
/// legacy plugin discovery looks (that directory is fixed in dockerd; a unique name per run keeps runs apart), plus
/// the <c>blockdriver</c> CLI on the same store. Shared by the end-to-end tests and tools/BlockDriver.DockerBench
/// (linked source).
/// </summary>
internal sealed class BlockDriverDaemon : IDisposable
{
    private static readonly string CliPath = Path.Combine(AppContext.BaseDirectory, "blockdriver.dll");
    private readonly Action<string> _log;
    private readonly List<LoggedProcess> _runs = [];
    private LoggedProcess? _process;

    /// <param name="store">The store directory (the daemon creates it).</param>
    /// <param name="pluginName">The plugin name dockerd is started with (<c>-s NAME</c>).</param>
    /// <param name="log">Receives the daemon's output lines and the CLI commands run.</param>
    /// <param name="containerdSocket">Serve the containerd snapshotter proxy plugin on this socket
    /// (<c>daemon --containerd-socket</c>) instead of the graphdriver plugin; null for the plugin.</param>
    public BlockDriverDaemon(string store, string pluginName, Action<string> log, string? containerdSocket = null)
    {
        Store = store;
        PluginName = pluginName;
        _log = log;
        ContainerdSocket = containerdSocket;
    }

    public string Store { get; }

    public string PluginName { get; }

    /// <summary>The snapshotter's socket when the daemon serves containerd, else null.</summary>
    public string? ContainerdSocket { get; }

    /// <summary>The socket the daemon serves: the graphdriver plugin's (<c>/run/docker/plugins/NAME.sock</c>) or the
    /// snapshotter's.</summary>
    public string SocketPath => ContainerdSocket ?? $"/run/docker/plugins/{PluginName}.sock";

    public int Pid => _process?.Pid ?? throw new InvalidOperationException("the daemon was never started");

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>What every daemon run so far printed.</summary>
    public string Log => string.Join("\n----- blockdriver daemon restarted -----\n", _runs.Select(r => r.Output));

    /// <summary>A plugin name no other run uses: <c>blockdriver-</c> and 8 random hex digits.</summary>
    public static string UniquePluginName() => "blockdriver-" + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())[..8];

    /// <summary>Starts the daemon and waits until its admin API is ready and the plugin socket accepts connections.</summary>
    public async Task StartAsync()
    {
        if (IsRunning)
        {
            throw new InvalidOperationException("the blockdriver daemon is already running");
        }

        if (!File.Exists(CliPath))
        {
            throw new InvalidOperationException($"{CliPath} is missing: the project must reference src/BlockDriver.Cli.");
        }

        _process = LoggedProcess.Start(
            "blockdriver",
            Dotnet,
            ContainerdSocket is null
                ? [CliPath, "--root", Store, "daemon", "--docker", "--Docker:Socket=" + SocketPath, "--Docker:Name=" + PluginName]
                : [CliPath, "--root", Store, "daemon", "--containerd-socket", ContainerdSocket],
            _log);
        _runs.Add(_process);
        await _process.WaitUntilAsync(() => Task.FromResult(_process.Output.Contains(" ready: ", StringComparison.Ordinal) && Answers(SocketPath)),
            $"a ready line and a listening {SocketPath}", TimeSpan.FromSeconds(90)).ConfigureAwait(false);
    }

    /// <summary>SIGTERM (the daemon unmounts everything and exits 0), SIGKILL after two minutes. Returns the exit
    /// code, null when it had to be killed or was not running.</summary>
    public async Task<int?> StopAsync()
    {
        if (_process is null || _process.HasExited)
        {
            return null;
        }

        int? code = await _process.StopAsync(TimeSpan.FromMinutes(2)).ConfigureAwait(false);
        _log($"blockdriver daemon exited: {(code is null ? "killed" : code.ToString())}");
        return code;
    }

    /// <summary>SIGKILL: mounts, loop devices, the FUSE mount and the socket stay for the next start to clean up.</summary>
    public async Task KillAsync()
    {
        if (_process is not null)
        {
            await _process.KillAsync().ConfigureAwait(false);
            _log("blockdriver daemon killed (SIGKILL)");
        }
    }

    /// <summary>Runs <c>blockdriver --root STORE ARGS</c>; the result is logged.</summary>
    public async Task<CommandResult> CliAsync(params string[] args)
    {
        CommandResult result = await Command.RunAsync(Dotnet, [CliPath, "--root", Store, .. args], TimeSpan.FromMinutes(3)).ConfigureAwait(false);
        _log(result.ToString());
        return result;
    }

    /// <summary>Runs a CLI command that must succeed and returns its stdout.</summary>
    public async Task<string> CliOkAsync(params string[] args)
    {
        CommandResult result = await CliAsync(args).ConfigureAwait(false);
        return result.ExitCode == 0 ? result.Stdout : throw new InvalidOperationException($"blockdriver command failed:\n{result}");
    }

    public void Dispose()
    {
        foreach (LoggedProcess run in _runs)
        {
            run.Dispose();
        }
    }

    private static string Dotnet =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH")
        ?? (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin")
            .Select(directory => Path.Combine(directory, "dotnet"))
            .FirstOrDefault(File.Exists)
        ?? "dotnet";

    private static bool Answers(string socketPath)
    {
        if (!File.Exists(socketPath))
        {
            return false;
        }

        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable)
        {
            // A stale socket file of a killed daemon, not yet replaced by the new one.
            return false;
        }
    }
}
