using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>
/// One end-to-end test's world, all under a temp directory: a blockdriver store (<c>store/</c>) served by a real
/// <c>blockdriver daemon --docker</c> under a plugin name unique to this run, a dockerd on it (<c>docker-bd/</c>,
/// <c>-s NAME</c>) and, on request, a second dockerd on overlay2 (<c>docker-ov/</c>). Disposing removes every
/// container, stops the dockerds (SIGTERM), stops the blockdriver daemon (SIGTERM: it unmounts), then checks that
/// nothing is left — no mount under the directory, no loop device on its files (the store's run/fuse files), no FUSE
/// mount, no dockerd / containerd / shim / container / daemon process, no plugin socket — undoes by hand whatever
/// is, deletes the directory, and fails (after cleaning up) if anything had been left.
/// </summary>
internal sealed class DockerEnvironment : IAsyncDisposable
{
    public const string TempPrefix = "dockere2e";
    private readonly TempDirectory _temp;
    private readonly ExternalContainerd? _containerd;
    private readonly DockerInstall _install;
    private Dockerd? _overlay;

    private DockerEnvironment(TempDirectory temp, ITestOutputHelper? output, DockerStack stack, DockerInstall install)
    {
        _temp = temp;
        Output = output;
        Stack = stack;
        _install = install;
        if (stack.Snapshotter)
        {
            Daemon = new BlockDriverDaemon(temp.GetFilePath("store"), BlockDriverDaemon.UniquePluginName(), Log, temp.GetFilePath("snapshotter.sock"));
            _containerd = new ExternalContainerd(temp.GetFilePath("containerd"),
                install.Containerd ?? throw new InvalidOperationException($"{install.Name} brings no containerd"), install.Environment, Log);
            Docker = new Dockerd(temp.GetFilePath("docker-bd"), Snapshotter, Log, install,
                """{"features": {"containerd-snapshotter": true}}""", ["--containerd", _containerd.Socket]);
        }
        else
        {
            Daemon = new BlockDriverDaemon(temp.GetFilePath("store"), BlockDriverDaemon.UniquePluginName(), Log);
            Docker = new Dockerd(temp.GetFilePath("docker-bd"), Daemon.PluginName, Log, install);
        }
    }

    /// <summary>The containerd proxy plugin's name under which dockerd's containerd reaches the daemon's snapshotter
    /// (and dockerd's <c>--storage-driver</c>).</summary>
    public const string Snapshotter = "blockdriver";

    /// <summary>Which dockerd on which front end.</summary>
    public DockerStack Stack { get; }

    /// <summary>Where lines go: the running test's output (a class fixture points it at each test in turn), or
    /// nowhere.</summary>
    public ITestOutputHelper? Output { get; set; }

    /// <summary>The blockdriver daemon serving the plugin, and the CLI on its store.</summary>
    public BlockDriverDaemon Daemon { get; }

    /// <summary>dockerd on the blockdriver plugin.</summary>
    public Dockerd Docker { get; }

    public string Directory => _temp.FullName;

    /// <summary>Checks the programs are there (a clear failure naming the packages otherwise), then starts the
    /// blockdriver daemon and a dockerd on it.</summary>
    public static Task<DockerEnvironment> StartAsync(ITestOutputHelper output) => StartAsync(output, DockerStack.Docker20Plugin);

    /// <summary>As <see cref="StartAsync(ITestOutputHelper)"/> on <paramref name="stack"/>: a modern stack's
    /// packages are fetched (once per machine, <see cref="ModernDocker"/>), and a snapshotter stack also starts its
    /// containerd between the blockdriver daemon and dockerd.</summary>
    public static async Task<DockerEnvironment> StartAsync(ITestOutputHelper? output, DockerStack stack)
    {
        DockerEndToEndRequirements.ThrowIfMissing();
        DockerInstall install = stack.Modern ? await ModernDocker.InstallAsync(line => output?.WriteLine(line)) : DockerInstall.Debian12;
        var env = new DockerEnvironment(new TempDirectory(TempPrefix), output, stack, install);
        try
        {
            await env.Daemon.StartAsync();
            if (env._containerd is not null)
            {
                await env._containerd.StartAsync(Snapshotter, env.Daemon.SocketPath);
            }

            await env.Docker.StartAsync();
            return env;
        }
        catch
        {
            await env.DisposeAsync();
            throw;
        }
    }

    /// <summary>A second dockerd of the same version, on the kernel's overlayfs (started on first use): overlay2, or
    /// on a snapshotter stack containerd's overlayfs snapshotter (in the containerd dockerd starts itself). The
    /// reference the suites compare BlockDriver's results with.</summary>
    public async Task<Dockerd> OverlayAsync()
    {
        if (_overlay is null)
        {
            _overlay = Stack.Snapshotter
                ? new Dockerd(_temp.GetFilePath("docker-ov"), "overlayfs", Log, _install, """{"features": {"containerd-snapshotter": true}}""")
                : new Dockerd(_temp.GetFilePath("docker-ov"), "overlay2", Log, _install);
            await _overlay.StartAsync();
        }

        return _overlay;
    }

    public string PathOf(string name) => _temp.GetFilePath(name);

    /// <summary>Builds the busybox root file system tar and imports it into <paramref name="docker"/> as <paramref name="image"/>.</summary>
    public async Task ImportBusyboxAsync(Dockerd docker, string image)
    {
        string tar = PathOf("busybox-rootfs.tar");
        if (!File.Exists(tar))
        {
            ImageTars.WriteBusyboxRootfs(tar);
        }

        await docker.RunOkAsync("import", tar, image);
    }

    /// <summary>The store's layers (<c>blockdriver layer ls --json</c>).</summary>
    public async Task<IReadOnlyList<JsonElement>> LayersAsync()
    {
        using JsonDocument doc = JsonDocument.Parse(await Daemon.CliOkAsync("layer", "ls", "--json"));
        return [.. doc.RootElement.EnumerateArray().Select(e => e.Clone())];
    }

    /// <summary>The store's space (<c>blockdriver df --json</c>).</summary>
    public async Task<JsonElement> DfAsync()
    {
        using JsonDocument doc = JsonDocument.Parse(await Daemon.CliOkAsync("df", "--json"));
        return doc.RootElement.Clone();
    }

    public void Log(string line)
    {
        try
        {
            Output?.WriteLine(line);
        }
        catch (InvalidOperationException)
        {
            // The test has finished; xunit no longer takes its output (a late line of a process being stopped).
        }
    }

    public async ValueTask DisposeAsync()
    {
        var failures = new List<string>();
        async Task Step(string what, Func<Task> step)
        {
            try
            {
                await step();
            }
            catch (Exception ex)
            {
                failures.Add($"{what}: {ex}");
            }
        }

        foreach (Dockerd docker in new[] { Docker, _overlay }.OfType<Dockerd>().Where(d => d.IsRunning))
        {
            await Step($"removing the containers of dockerd[{docker.StorageDriver}]", docker.RemoveAllContainersAsync);
            await Step($"stopping dockerd[{docker.StorageDriver}]", async () =>
            {
                if (await docker.StopAsync() is not 0 and var code)
                {
                    throw new InvalidOperationException($"dockerd[{docker.StorageDriver}] exited {code?.ToString() ?? "only to SIGKILL"}");
                }
            });
        }

        await Step("stopping containerd", async () =>
        {
            if (_containerd is { IsRunning: true } && await _containerd.StopAsync() is not 0 and var code)
            {
                throw new InvalidOperationException($"containerd exited {code?.ToString() ?? "only to SIGKILL"}:\n{_containerd.Log}");
            }
        });

        await Step("stopping the blockdriver daemon", async () =>
        {
            if (Daemon.IsRunning && await Daemon.StopAsync() is not 0 and var code)
            {
                throw new InvalidOperationException($"the blockdriver daemon exited {code?.ToString() ?? "only to SIGKILL"}:\n{Daemon.Log}");
            }
        });

        IReadOnlyList<string> leaks = HostLeaks.Find(Directory, Daemon.SocketPath);
        if (leaks.Count > 0)
        {
            failures.Add("left behind: " + string.Join("; ", leaks));
            IReadOnlyList<string> stuck = HostLeaks.Remove(Directory, Daemon.SocketPath);
            if (stuck.Count > 0)
            {
                failures.Add("could not remove: " + string.Join("; ", stuck));
            }
        }

        Docker.Dispose();
        _overlay?.Dispose();
        _containerd?.Dispose();
        Daemon.Dispose();
        await Step("deleting the temp directory", () =>
        {
            _temp.Dispose();
            return Task.CompletedTask;
        });
        if (failures.Count > 0)
        {
            throw new InvalidOperationException("The end-to-end environment did not come down cleanly:\n" + string.Join('\n', failures));
        }
    }
}
