using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BlockDriver.Docker.Tests.EndToEnd;
using BlockDriver.Testing;

namespace BlockDriver.DockerBench;

/// <summary>One benchmark run under <paramref name="work"/>: a blockdriver daemon serving a plugin of a unique name,
/// dockerd on it and dockerd on overlay2, the same busybox image imported into both. Figures go to the console, every
/// command and daemon line to <paramref name="log"/>.</summary>
internal sealed class Bench(string work, BenchOptions options, Action<string> log) : IDisposable
{
    private const string Image = "bench/busybox:1";
    private readonly BlockDriverDaemon _daemon = new(Path.Combine(work, "store"), BlockDriverDaemon.UniquePluginName(), log);
    private readonly List<(string Name, Dockerd Docker)> _drivers = [];

    public async Task RunAsync()
    {
        var clock = Stopwatch.StartNew();
        await _daemon.StartAsync();
        Console.WriteLine(Invariant($"blockdriver daemon (plugin {_daemon.PluginName}) ready in {clock.Elapsed.TotalSeconds:F1} s"));
        _drivers.Add(("blockdriver", new Dockerd(Path.Combine(work, "docker-bd"), _daemon.PluginName, log)));
        _drivers.Add(("overlay2", new Dockerd(Path.Combine(work, "docker-ov"), "overlay2", log)));
        foreach ((string name, Dockerd docker) in _drivers)
        {
            clock.Restart();
            await docker.StartAsync();
            Console.WriteLine(Invariant($"dockerd on {name} ready in {clock.Elapsed.TotalSeconds:F1} s"));
        }

        string tar = Path.Combine(work, "busybox-rootfs.tar");
        ImageTars.WriteBusyboxRootfs(tar);
        foreach ((string name, Dockerd docker) in _drivers)
        {
            clock.Restart();
            await docker.RunOkAsync("import", tar, Image);
            Console.WriteLine(Invariant($"docker import of the busybox rootfs ({new FileInfo(tar).Length / 1e6:F1} MB) on {name}: {clock.Elapsed.TotalSeconds:F2} s"));
        }

        Dictionary<string, List<double>> latencies = await MeasureRunLatencyAsync();
        Console.WriteLine();
        Console.WriteLine($"docker run --rm {Image} true, {options.Runs} runs per driver, alternating (ms):");
        Console.WriteLine("| driver | median | p90 | min | max |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: |");
        foreach ((string name, List<double> ms) in latencies)
        {
            Console.WriteLine(Invariant($"| {name} | {Median(ms):F0} | {P90(ms):F0} | {ms.Min():F0} | {ms.Max():F0} |"));
        }

        double ratio = Median(latencies["blockdriver"]) / Median(latencies["overlay2"]);
        double ratio90 = P90(latencies["blockdriver"]) / P90(latencies["overlay2"]);
        Console.WriteLine(Invariant($"ratio blockdriver/overlay2: median {ratio:F2}x, p90 {ratio90:F2}x (target: within 1.50x) -> {(ratio <= 1.5 ? "within target" : "OVER TARGET")}"));

        if (options.Containers > 0)
        {
            foreach ((string name, Dockerd docker) in _drivers)
            {
                await ContainersAsync(name, docker);
            }
        }
    }

    /// <summary>Removes containers, stops the dockerds and the daemon (SIGTERM), checks that nothing refers to the work
    /// directory any more (undoing what does), deletes it. Returns what went wrong.</summary>
    public async Task<IReadOnlyList<string>> CleanUpAsync()
    {
        var problems = new List<string>();
        foreach ((string name, Dockerd docker) in _drivers)
        {
            try
            {
                if (docker.IsRunning)
                {
                    await docker.RemoveAllContainersAsync();
                    int? code = await docker.StopAsync();
                    if (code != 0)
                    {
                        problems.Add($"dockerd on {name} exited {code?.ToString(CultureInfo.InvariantCulture) ?? "only to SIGKILL"}");
                    }
                }
            }
            catch (Exception e)
            {
                problems.Add($"stopping dockerd on {name}: {e.Message}");
            }
        }

        try
        {
            int? code = await _daemon.StopAsync();
            if (code is not (0 or null))
            {
                problems.Add($"the blockdriver daemon exited {code}");
            }
        }
        catch (Exception e)
        {
            problems.Add($"stopping the blockdriver daemon: {e.Message}");
        }

        IReadOnlyList<string> leaks = HostLeaks.Find(work, _daemon.SocketPath);
        if (leaks.Count > 0)
        {
            problems.Add("left behind (removing): " + string.Join("; ", leaks));
            problems.AddRange(HostLeaks.Remove(work, _daemon.SocketPath).Select(l => "could not remove: " + l));
        }

        try
        {
            Directory.Delete(work, recursive: true);
        }
        catch (IOException e)
        {
            problems.Add($"deleting {work}: {e.Message}");
        }

        return problems;
    }

    /// <summary>Kills whatever <see cref="CleanUpAsync"/> did not stop.</summary>
    public void Dispose()
    {
        foreach ((string _, Dockerd docker) in _drivers)
        {
            docker.Dispose();
        }

        _daemon.Dispose();
    }

    // One warm-up run per driver (the first container of a dockerd sets up cgroups and the runtime), then the runs,
    // alternating which driver goes first so neither always runs on a cache the other warmed.
    private async Task<Dictionary<string, List<double>>> MeasureRunLatencyAsync()
    {
        var latencies = _drivers.ToDictionary(d => d.Name, _ => new List<double>());
        foreach ((string _, Dockerd docker) in _drivers)
        {
            await docker.RunOkAsync("run", "--rm", Image, "true");
        }

        for (int run = 0; run < options.Runs; run++)
        {
            foreach ((string name, Dockerd docker) in run % 2 == 0 ? _drivers : Enumerable.Reverse(_drivers))
            {
                var clock = Stopwatch.StartNew();
                await docker.RunOkAsync("run", "--rm", Image, "true");
                latencies[name].Add(clock.Elapsed.TotalMilliseconds);
            }
        }

        return latencies;
    }

    // N containers writing M MiB of random data each, synced, left running: dockerd's and the store's figures, and the
    // host bytes they took (the store's layer files for blockdriver, du of overlay2's directory for overlay2).
    private async Task ContainersAsync(string name, Dockerd docker)
    {
        Console.WriteLine();
        Console.WriteLine($"== {name}: {options.Containers} containers writing {options.WriteMiB} MiB each ==");
        long hostBefore = await HostBytesAsync(name, docker);
        string[] names = [.. Enumerable.Range(1, options.Containers).Select(i => $"bench-{i}")];
        var clock = Stopwatch.StartNew();
        foreach (string container in names)
        {
            await docker.RunOkAsync("run", "-d", "--name", container, Image, "sh", "-c",
                $"dd if=/dev/urandom of=/data/blob bs=1M count={options.WriteMiB} 2>/dev/null && sync && touch /ready && exec sleep 3600");
        }

        double started = clock.Elapsed.TotalSeconds;
        foreach (string container in names)
        {
            for (int attempt = 0; (await docker.RunAsync("exec", container, "test", "-e", "/ready")).ExitCode != 0; attempt++)
            {
                if (attempt > 600)
                {
                    throw new TimeoutException($"{container} on {name} did not finish writing in 2 minutes");
                }

                await Task.Delay(200);
            }
        }

        Console.WriteLine(Invariant($"started in {started:F1} s, all written and synced after {clock.Elapsed.TotalSeconds:F1} s"));
        long hostAfter = await HostBytesAsync(name, docker);
        Console.WriteLine(Invariant($"host bytes taken by the containers: {hostAfter - hostBefore} ({(hostAfter - hostBefore) / 1048576.0:F1} MiB; {(hostAfter - hostBefore) / 1048576.0 / options.Containers:F2} MiB per container)"));
        Console.WriteLine("$ docker ps -s");
        Console.Write(await docker.RunOkAsync("ps", "-s"));
        Console.WriteLine("$ docker system df");
        Console.Write(await docker.RunOkAsync("system", "df"));
        if (name == "blockdriver")
        {
            Console.WriteLine("$ blockdriver df");
            Console.Write(await _daemon.CliOkAsync("df"));
        }

        clock.Restart();
        await docker.RunOkAsync(["rm", "-f", .. names]);
        Console.WriteLine(Invariant($"docker rm -f of {names.Length} containers: {clock.Elapsed.TotalSeconds:F1} s; host bytes after: {await HostBytesAsync(name, docker) - hostBefore} over the start"));
    }

    private async Task<long> HostBytesAsync(string name, Dockerd docker)
    {
        if (name == "blockdriver")
        {
            // layerBytes, not allocated: while layers are mounted, df's allocated also counts what is under the
            // store's mount points (the FUSE device files, the mounted file systems).
            using JsonDocument df = JsonDocument.Parse(await _daemon.CliOkAsync("df", "--json"));
            return df.RootElement.GetProperty("layerBytes").GetInt64();
        }

        CommandResult du = await Command.RunAsync("du", ["-s", "-x", "--block-size=1", Path.Combine(docker.DataRoot, "overlay2")], TimeSpan.FromMinutes(2));
        return du.ExitCode == 0
            ? long.Parse(du.Stdout.Split('\t')[0], CultureInfo.InvariantCulture)
            : throw new InvalidOperationException(du.ToString());
    }

    private static double Median(List<double> values)
    {
        double[] sorted = [.. values.Order()];
        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }

    // Nearest-rank 90th percentile.
    private static double P90(List<double> values)
    {
        double[] sorted = [.. values.Order()];
        return sorted[(int)Math.Ceiling(0.9 * sorted.Length) - 1];
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
