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
    private readonly ITestOutputHelper _output;
    private Dockerd? _overlay;

    private DockerEnvironment(TempDirectory temp, ITestOutputHelper output)
    {
        _temp = temp;
        _output = output;
        Daemon = new BlockDriverDaemon(temp.GetFilePath("store"), BlockDriverDaemon.UniquePluginName(), Log);
        Docker = new Dockerd(temp.GetFilePath("docker-bd"), Daemon.PluginName, Log);
    }

    /// <summary>The blockdriver daemon serving the plugin, and the CLI on its store.</summary>
    public BlockDriverDaemon Daemon { get; }

    /// <summary>dockerd on the blockdriver plugin.</summary>
    public Dockerd Docker { get; }

    public string Directory => _temp.FullName;

    /// <summary>Checks the programs are there (a clear failure naming the packages otherwise), then starts the
    /// blockdriver daemon and a dockerd on it.</summary>
    public static async Task<DockerEnvironment> StartAsync(ITestOutputHelper output)
    {
        DockerEndToEndRequirements.ThrowIfMissing();
        var env = new DockerEnvironment(new TempDirectory(TempPrefix), output);
        try
        {
            await env.Daemon.StartAsync();
            await env.Docker.StartAsync();
            return env;
        }
        catch
        {
            await env.DisposeAsync();
            throw;
        }
    }

    /// <summary>A second dockerd, on overlay2 (started on first use).</summary>
    public async Task<Dockerd> OverlayAsync()
    {
        if (_overlay is null)
        {
            _overlay = new Dockerd(_temp.GetFilePath("docker-ov"), "overlay2", Log);
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
            _output.WriteLine(line);
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
