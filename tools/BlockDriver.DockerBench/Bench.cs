using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BlockDriver.Docker.Tests.EndToEnd;
using BlockDriver.Testing;

namespace BlockDriver.DockerBench;

/// <summary>One benchmark run under <paramref name="work"/>: a blockdriver daemon serving a plugin of a unique name,
/// dockerd on it and dockerd on overlay2, the Debian image imported into both; then each step timed on both, the two
/// alternating (<see cref="MeasureAsync"/>). Figures go to the console, every command and daemon line to
/// <paramref name="log"/>.</summary>
internal sealed class Bench(string work, BenchOptions options, Action<string> log) : IDisposable
{
    private const string Image = "bench/debian:12";
    private const string Classic = "bench/seed:classic";
    private const string BuildKit = "bench/seed:buildkit";
    private const string Blockdriver = "blockdriver";
    private readonly BlockDriverDaemon _daemon = new(Path.Combine(work, "store"), BlockDriverDaemon.UniquePluginName(), log);
    private readonly List<(string Name, Dockerd Docker)> _drivers = [];
    private readonly List<Step> _steps = [];

    public async Task RunAsync()
    {
        var clock = Stopwatch.StartNew();
        await _daemon.StartAsync();
        Console.WriteLine(Invariant($"blockdriver daemon (plugin {_daemon.PluginName}, pid {_daemon.Pid}) ready in {clock.Elapsed.TotalSeconds:F1} s"));
        _drivers.Add((Blockdriver, new Dockerd(Path.Combine(work, "docker-bd"), _daemon.PluginName, log)));
        _drivers.Add(("overlay2", new Dockerd(Path.Combine(work, "docker-ov"), "overlay2", log)));
        foreach ((string name, Dockerd docker) in _drivers)
        {
            clock.Restart();
            await docker.StartAsync();
            Console.WriteLine(Invariant($"dockerd on {name} ready in {clock.Elapsed.TotalSeconds:F1} s"));
        }

        // debootstrap once per machine (about a minute), cached with its tar under the tests' cache;
        // BLOCKDRIVER_DEBIAN_ROOTFS=DIR uses a rootfs already made.
        string tar = await DebianRootfs.TarAsync(log, CancellationToken.None);
        Console.WriteLine(Invariant($"Debian rootfs tar: {tar} ({new FileInfo(tar).Length / 1e6:F0} MB)"));
        string context = Path.Combine(work, "seed");
        SeedContext.WriteDebian(context, Image, "the seed");

        // The image the other steps use, then timed imports of the same tar under other names, each removed (untimed).
        foreach ((string _, Dockerd docker) in _drivers)
        {
            await docker.RunOkAsync("import", tar, Image);
        }

        await MeasureAsync("docker import (Debian rootfs tar)", 1.1, options.Runs,
            timed: (docker, run) => docker.RunOkAsync("import", tar, $"bench/import:{run}"),
            after: (docker, run) => docker.RunOkAsync("rmi", $"bench/import:{run}"));

        foreach ((string builder, string tag, bool buildKit) in new[] { ("classic builder", Classic, false), ("BuildKit", BuildKit, true) })
        {
            await MeasureAsync($"docker build, {builder}, cold (--no-cache)", 1.2, options.Runs,
                timed: (docker, _) => BuildAsync(docker, buildKit, tag, context, "--no-cache"),
                after: (docker, _) => CheckSeedAsync(docker, tag));
            await MeasureAsync($"docker build, {builder}, cached (second build)", null, options.Runs,
                timed: (docker, _) => BuildAsync(docker, buildKit, tag, context));
        }

        await MeasureAsync($"docker run --rm {Image} true", 1.1, options.RunRuns,
            timed: (docker, _) => docker.RunOkAsync("run", "--rm", Image, "true"));

        string[] doomed = [.. Enumerable.Range(1, options.RmContainers).Select(i => $"doomed-{i}")];
        await MeasureAsync($"docker rm -f of {doomed.Length} running containers", 1.2, options.Runs,
            before: async (docker, _) =>
            {
                foreach (string container in doomed)
                {
                    await docker.RunOkAsync("run", "-d", "--name", container, Image, "sleep", "3600");
                }
            },
            timed: (docker, _) => docker.RunOkAsync(["rm", "-f", .. doomed]));

        Console.WriteLine();
        Console.WriteLine($"Medians, blockdriver against overlay2 (each step {options.Runs} runs per driver, docker run {options.RunRuns}; alternating):");
        Console.WriteLine("| step | blockdriver | overlay2 | ratio | target |");
        Console.WriteLine("| --- | ---: | ---: | ---: | --- |");
        foreach (Step step in _steps)
        {
            Console.WriteLine(step.Row());
        }

        if (options.Containers > 0)
        {
            foreach ((string name, Dockerd docker) in _drivers)
            {
                await ContainersAsync(name, docker);
            }
        }
    }

    /// <summary>Whether a step failed (its figures are missing).</summary>
    public bool Failed => _steps.Any(s => s.Failure is not null);

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

    // Times `timed` `runs` times on each driver, alternating which driver goes first so neither always runs on a cache
    // the other warmed; `before` and `after` run around each timed call, untimed. One untimed warm-up round first (the
    // first container of a dockerd sets up cgroups and the runtime; the first read of the tar fills the page cache).
    private async Task MeasureAsync(
        string title,
        double? target,
        int runs,
        Func<Dockerd, int, Task> timed,
        Func<Dockerd, int, Task>? before = null,
        Func<Dockerd, int, Task>? after = null)
    {
        var step = new Step(title, target, _drivers.ToDictionary(d => d.Name, _ => new List<double>()));
        _steps.Add(step);
        Console.Write($"{title}:");
        try
        {
            await MeasureRunsAsync(step, runs, timed, before, after);
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            // The other steps still give their figures; the bench exits 1 (Failed).
            step.Failure = e.Message.Split('\n')[0];
            Console.WriteLine();
            Console.WriteLine($"  FAILED: {e.Message}");
            return;
        }

        Console.WriteLine();
        Console.WriteLine("  " + step.Summary());
    }

    private async Task MeasureRunsAsync(Step step, int runs, Func<Dockerd, int, Task> timed, Func<Dockerd, int, Task>? before, Func<Dockerd, int, Task>? after)
    {
        string title = step.Title;
        for (int run = 0; run <= runs; run++)
        {
            foreach ((string name, Dockerd docker) in run % 2 == 0 ? _drivers : Enumerable.Reverse(_drivers))
            {
                if (before is not null)
                {
                    await before(docker, run);
                }

                var clock = Stopwatch.StartNew();
                await timed(docker, run);
                double ms = clock.Elapsed.TotalMilliseconds;
                log(Invariant($"timed: {title} on {name}, run {run}: {ms:F0} ms{(run == 0 ? " (warm-up, not counted)" : "")}"));
                if (run > 0)
                {
                    step.Ms[name].Add(ms);
                }

                if (after is not null)
                {
                    await after(docker, run);
                }
            }

            Console.Write(run == 0 ? " warm-up done" : ".");
        }
    }

    private async Task BuildAsync(Dockerd docker, bool buildKit, string tag, string context, params string[] extra)
    {
        // The client picks the builder from DOCKER_BUILDKIT (docker.io 20.10 defaults to the classic builder).
        CommandResult result = await Command.RunAsync(
            "/usr/bin/env",
            [$"DOCKER_BUILDKIT={(buildKit ? 1 : 0)}", Dockerd.ClientPath, "-H", "unix://" + docker.Socket, "build", "--network", "none", .. extra, "-t", tag, context],
            TimeSpan.FromMinutes(5));
        log(result.ToString());
        if (result.ExitCode != 0)
        {
            // The whole output and dockerd's are in the log.
            throw new InvalidOperationException($"docker build on {docker.StorageDriver} failed (exit {result.ExitCode}): {result.Stderr.Trim()}");
        }
    }

    // The image built runs and prints the seed's greeting and the line of the C program gcc compiled in the RUN step.
    private static async Task CheckSeedAsync(Dockerd docker, string tag)
    {
        string output = await docker.RunOkAsync("run", "--rm", tag);
        if (output.Trim() != "hello from the seed; compiled by gcc in the build")
        {
            throw new InvalidOperationException($"{tag} on {docker.StorageDriver} printed {output.Trim()}, not the seed's greeting.");
        }
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
                $"mkdir -p /data && dd if=/dev/urandom of=/data/blob bs=1M count={options.WriteMiB} 2>/dev/null && sync && touch /ready && exec sleep 3600");
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

    // One step's timings in ms per driver, and its target ratio to overlay2 (null: none).
    private sealed record Step(string Title, double? Target, Dictionary<string, List<double>> Ms)
    {
        /// <summary>The first line of the error that stopped the step, or null.</summary>
        public string? Failure { get; set; }

        public double Ratio => Median(Ms[Blockdriver]) / Median(Ms["overlay2"]);

        public string Summary() => string.Join("; ", Ms.Select(d => Invariant(
            $"{d.Key} median {Median(d.Value):F0} ms (p90 {P90(d.Value):F0}, min {d.Value.Min():F0}, max {d.Value.Max():F0})"))) +
            Invariant($"; ratio {Ratio:F2}x{Verdict}");

        public string Row() => Failure is not null ? $"| {Title} | failed: {Failure} | | | |" : Invariant(
            $"| {Title} | {Median(Ms[Blockdriver]):F0} ms | {Median(Ms["overlay2"]):F0} ms | {Ratio:F2}x | {(Target is double t ? Invariant($"≤ {t:F1}x{Verdict}") : "none")} |");

        private string Verdict => Target is double t ? (Ratio <= t ? " (met)" : " (MISSED)") : "";
    }
}
