namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>
/// A private dockerd (Debian's docker.io 20.10) with everything under one directory: <c>data/</c> (--data-root),
/// <c>exec/</c> (--exec-root; dockerd starts its own containerd there), <c>docker.sock</c>, <c>dockerd.pid</c> and an
/// empty <c>daemon.json</c> (so the host's /etc/docker/daemon.json does not apply). No iptables, no bridge, no
/// userland proxy: containers get no network, which none of the callers need. It is driven only through
/// <c>/usr/bin/docker -H unix://DIR/docker.sock</c>. Not thread-safe for Start/Stop; <see cref="RunAsync(string[])"/> may run
/// concurrently. Shared by the end-to-end tests and tools/BlockDriver.DockerBench (linked source).
/// </summary>
internal sealed class Dockerd : IDisposable
{
    /// <summary>The docker client of the docker.io package (/usr/local/bin/docker may be a newer client).</summary>
    public const string ClientPath = "/usr/bin/docker";

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(3);
    private readonly Action<string> _log;
    private readonly string _daemonJson;
    private readonly IReadOnlyList<string> _extraArgs;
    private readonly Dictionary<string, string> _clientEnvironment;
    private readonly List<LoggedProcess> _runs = [];
    private LoggedProcess? _process;

    /// <param name="directory">Holds everything of this dockerd.</param>
    /// <param name="storageDriver">overlay2, a graphdriver plugin's name, or (with the containerd snapshotter
    /// feature in <paramref name="daemonJson"/>) a snapshotter's.</param>
    /// <param name="log">Receives dockerd's lines and the client commands run.</param>
    /// <param name="install">Which dockerd and client; Debian 12's docker.io when null.</param>
    /// <param name="daemonJson">The daemon.json dockerd reads.</param>
    /// <param name="extraArgs">More dockerd arguments (<c>--containerd SOCKET</c>).</param>
    public Dockerd(string directory, string storageDriver, Action<string> log, DockerInstall? install = null,
        string daemonJson = "{}", IReadOnlyList<string>? extraArgs = null)
    {
        Directory = directory;
        StorageDriver = storageDriver;
        _log = log;
        Install = install ?? DockerInstall.Debian12;
        _daemonJson = daemonJson;
        _extraArgs = extraArgs ?? [];
        _clientEnvironment = new Dictionary<string, string>(Install.Environment)
        {
            // The client's own config (and buildx's state) stays in this directory; the CLI plugins come from the install.
            ["DOCKER_CONFIG"] = Path.Combine(directory, "client"),
        };
    }

    /// <summary>The dockerd and client this runs.</summary>
    public DockerInstall Install { get; }

    /// <summary>dockerd of the docker.io package (Debian puts it in /usr/sbin), or null when it is not installed.</summary>
    public static string? DaemonPath => Command.Find("/usr/sbin/dockerd", "/usr/bin/dockerd");

    /// <summary>The directory holding this daemon's data root, exec root and socket.</summary>
    public string Directory { get; }

    /// <summary>overlay2, or a graphdriver plugin's name.</summary>
    public string StorageDriver { get; }

    public string DataRoot => Path.Combine(Directory, "data");

    public string ExecRoot => Path.Combine(Directory, "exec");

    public string Socket => Path.Combine(Directory, "docker.sock");

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>What every dockerd run so far printed (it logs to stderr).</summary>
    public string Log => string.Join("\n----- dockerd restarted -----\n", _runs.Select(r => r.Output));

    /// <summary>The programs this needs that are missing (empty when dockerd can run here).</summary>
    public static IReadOnlyList<string> MissingPrograms() =>
    [
        .. DaemonPath is null ? ["dockerd (/usr/sbin/dockerd)"] : Array.Empty<string>(),
        .. File.Exists(ClientPath) ? Array.Empty<string>() : [ClientPath],
        .. File.Exists("/usr/bin/containerd") ? Array.Empty<string>() : ["/usr/bin/containerd"],
    ];

    /// <summary>Starts dockerd and waits until <c>docker version</c> answers.</summary>
    public async Task StartAsync()
    {
        if (IsRunning)
        {
            throw new InvalidOperationException($"dockerd in {Directory} is already running");
        }

        string dockerd = Install.DaemonPath ?? throw new InvalidOperationException(
            "dockerd was not found (/usr/sbin/dockerd, /usr/bin/dockerd): install Debian's docker.io and containerd (apt-get install docker.io containerd; .ci/run does).");
        System.IO.Directory.CreateDirectory(Directory);
        string config = Path.Combine(Directory, "daemon.json");
        await File.WriteAllTextAsync(config, _daemonJson + "\n").ConfigureAwait(false);
        string client = _clientEnvironment["DOCKER_CONFIG"];
        System.IO.Directory.CreateDirectory(client);
        if (Install.CliPlugins is string plugins && !Path.Exists(Path.Combine(client, "cli-plugins")))
        {
            File.CreateSymbolicLink(Path.Combine(client, "cli-plugins"), plugins);
        }

        _process = LoggedProcess.Start(
            $"dockerd[{StorageDriver}]",
            dockerd,
            [
                .. _extraArgs,
                "--experimental", "--storage-driver", StorageDriver, "--config-file", config,
                "--data-root", DataRoot, "--exec-root", ExecRoot, "--pidfile", Path.Combine(Directory, "dockerd.pid"),
                "--host", "unix://" + Socket, "--iptables=false", "--ip-masq=false", "--bridge=none", "--userland-proxy=false",

                // dockerd stops running containers on SIGTERM: SIGTERM to each, SIGKILL after this many seconds.
                "--shutdown-timeout", "10",
            ],
            _log,
            Install.Environment);
        _runs.Add(_process);

        // A graphdriver plugin that is not answering yet is retried by dockerd for 30 s before it gives up.
        await _process.WaitUntilAsync(
            async () => File.Exists(Socket) && (await RunAsync("version").ConfigureAwait(false)).ExitCode == 0,
            "an answer to 'docker version'",
            TimeSpan.FromSeconds(90)).ConfigureAwait(false);
    }

    /// <summary>Runs <c>/usr/bin/docker -H unix://SOCKET ARGS</c>; the result is also logged.</summary>
    public Task<CommandResult> RunAsync(params string[] args) => RunAsync(null, CommandTimeout, args);

    /// <summary>Runs <c>docker -H unix://SOCKET ARGS</c> with <paramref name="environment"/> set over the client's
    /// (DOCKER_BUILDKIT), killed past <paramref name="timeout"/>; the result is also logged.</summary>
    public async Task<CommandResult> RunAsync(IReadOnlyDictionary<string, string>? environment, TimeSpan timeout, params string[] args)
    {
        var variables = new Dictionary<string, string>(_clientEnvironment);
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            variables[key] = value;
        }

        CommandResult result = await Command.RunAsync(Install.ClientPath, ["-H", "unix://" + Socket, .. args], timeout, variables).ConfigureAwait(false);
        _log(result.ToString());
        return result;
    }

    /// <summary>As <see cref="RunOkAsync(string[])"/>, with <paramref name="environment"/> and <paramref name="timeout"/>.</summary>
    public async Task<string> RunOkAsync(IReadOnlyDictionary<string, string>? environment, TimeSpan timeout, params string[] args)
    {
        CommandResult result = await RunAsync(environment, timeout, args).ConfigureAwait(false);
        return result.ExitCode == 0
            ? result.Stdout
            : throw new InvalidOperationException($"docker command failed:\n{result}\n--- end of dockerd's log ---\n{Tail(Log, 40)}");
    }

    /// <summary>Runs a docker command that must succeed and returns its stdout; a failure throws with the command's
    /// output and the end of dockerd's log (what dockerd said about it).</summary>
    public async Task<string> RunOkAsync(params string[] args)
    {
        CommandResult result = await RunAsync(null, CommandTimeout, args).ConfigureAwait(false);
        return result.ExitCode == 0
            ? result.Stdout
            : throw new InvalidOperationException($"docker command failed:\n{result}\n--- end of dockerd's log ---\n{Tail(Log, 40)}");
    }

    /// <summary>Removes every container (docker rm -f), for teardown.</summary>
    public async Task RemoveAllContainersAsync()
    {
        string[] ids = (await RunOkAsync("ps", "-aq").ConfigureAwait(false)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (ids.Length > 0)
        {
            await RunOkAsync(["rm", "-f", .. ids]).ConfigureAwait(false);
        }
    }

    /// <summary>SIGTERM (dockerd stops its containers, calls the driver's Cleanup and stops its containerd), SIGKILL
    /// after a minute. Returns dockerd's exit code, null when it had to be killed or was not running.</summary>
    public async Task<int?> StopAsync()
    {
        if (_process is null || _process.HasExited)
        {
            return null;
        }

        int? code = await _process.StopAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        _log($"dockerd[{StorageDriver}] exited: {(code is null ? "killed" : code.ToString())}");
        return code;
    }

    public void Dispose()
    {
        foreach (LoggedProcess run in _runs)
        {
            run.Dispose();
        }
    }

    private static string Tail(string text, int lines) => string.Join('\n', text.Split('\n').TakeLast(lines));
}

/// <summary>A dockerd, its docker client and how to run them: Debian 12's docker.io (dockerd 20.10), or a newer one
/// unpacked into a directory (<c>ModernDocker</c>), whose programs come first on <c>PATH</c> in
/// <see cref="Environment"/> and whose client finds its CLI plugins (buildx) in <see cref="CliPlugins"/>.</summary>
internal sealed record DockerInstall(string Name, string? DaemonPath, string ClientPath, IReadOnlyDictionary<string, string> Environment,
    string? CliPlugins)
{
    /// <summary>The containerd to run beside this dockerd when it uses a containerd snapshotter; null when this
    /// install has none of its own.</summary>
    public string? Containerd { get; init; }

    /// <summary>Debian 12's docker.io: dockerd 20.10 from /usr/sbin, the client /usr/bin/docker (which builds with
    /// BuildKit itself, without buildx).</summary>
    public static DockerInstall Debian12 { get; } =
        new("dockerd 20.10", Dockerd.DaemonPath, Dockerd.ClientPath, new Dictionary<string, string>(), null);
}
