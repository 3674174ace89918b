using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>
/// Concurrency soak of dockerd on the plugin, bounded in time: on one busybox image, four classic-builder
/// <c>docker build</c>s of seed-shaped Dockerfiles (FROM, COPY, RUN, CMD; each its own context) and twenty container
/// run / exec / rm cycles all at once, while <c>docker ps -s</c> and <c>docker system df</c> poll in a loop. Every
/// docker call has a deadline and must exit 0; the built images must run; nothing may be left behind (the
/// environment's teardown). Each classic build commits three layers by streaming the build container's Diff into the
/// ApplyDiff of a new layer over the image (the RUN step's 4 MiB outgrow the socket buffers, so the Diff is still
/// streaming while dockerd creates that layer); the CMD step's Diff is empty and must still be a tar ApplyDiff takes.
/// The busybox image keeps it well inside its bound on two cores (a Debian image would first need debootstrap).
/// </summary>
[Collection(DockerEndToEndCollection.Name)]
public sealed class SoakTests(ITestOutputHelper output)
{
    private const string Image = "soak/busybox:1";
    private const int Builds = 4;
    private const int Cycles = 20;

    // The whole soak (not the environment's start and teardown) must end within this; every call within its own.
    private static readonly TimeSpan SoakDeadline = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan BuildDeadline = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(60);

    [DockerFact]
    public async Task Classic_builds_and_container_cycles_at_once_all_finish_within_their_deadlines()
    {
        await using DockerEnvironment env = await DockerEnvironment.StartAsync(output);
        Dockerd docker = env.Docker;
        await env.ImportBusyboxAsync(docker, Image);
        var calls = new ConcurrentQueue<(string What, double Ms, CommandResult? Result, string? Error)>();

        // One docker call: a deadline, the outcome recorded whatever it is; the stdout when it exited 0, else null.
        async Task<string?> Call(string what, TimeSpan deadline, params string[] args)
        {
            var clock = Stopwatch.StartNew();
            try
            {
                CommandResult result = await Command.RunAsync("/usr/bin/env", ["DOCKER_BUILDKIT=0", Dockerd.ClientPath, "-H", "unix://" + docker.Socket, .. args], deadline);
                env.Log(string.Create(CultureInfo.InvariantCulture, $"[{clock.Elapsed.TotalMilliseconds:F0} ms] {result}"));
                calls.Enqueue((what, clock.Elapsed.TotalMilliseconds, result, result.ExitCode == 0 ? null : $"exit {result.ExitCode}"));
                return result.ExitCode == 0 ? result.Stdout : null;
            }
            catch (TimeoutException ex)
            {
                calls.Enqueue((what, clock.Elapsed.TotalMilliseconds, null, ex.Message));
                env.Log(ex.Message);
                return null;
            }
        }

        async Task Build(int i)
        {
            string context = env.PathOf($"context-{i}");
            SeedContext.WriteBusybox(context, Image, $"build {i}");
            await Call("build", BuildDeadline, "build", "--network", "none", "-t", $"soak/seed-{i}:1", context);
        }

        async Task Cycle(int i)
        {
            string name = $"soak-{i}";
            if (await Call("run -d", CallDeadline, "run", "-d", "--name", name, Image, "sleep", "300") is null)
            {
                return;
            }

            string? seen = await Call("exec", CallDeadline, "exec", name, "sh", "-c", $"echo cycle {i} > /tmp/mine && cat /tmp/mine /data/hello.txt");
            if (seen is not null && seen != $"cycle {i}\nhello from the image\n")
            {
                calls.Enqueue(("exec output", 0, null, $"{name} printed {seen}"));
            }

            await Call("rm -f", CallDeadline, "rm", "-f", name);
        }

        using var stopPolling = new CancellationTokenSource();
        int polls = 0;
        async Task Poll()
        {
            while (!stopPolling.IsCancellationRequested)
            {
                await Call("ps -s", CallDeadline, "ps", "-s");
                await Call("system df", CallDeadline, "system", "df");
                Interlocked.Increment(ref polls);
            }
        }

        var soak = Stopwatch.StartNew();
        Task poller = Task.Run(Poll);
        Task work = Task.WhenAll([.. Enumerable.Range(1, Builds).Select(i => Task.Run(() => Build(i))), .. Enumerable.Range(1, Cycles).Select(i => Task.Run(() => Cycle(i)))]);
        try
        {
            // Each call's deadline bounds the work already; this bounds the whole even if the calls queue up.
            await work.WaitAsync(SoakDeadline);
        }
        finally
        {
            await stopPolling.CancelAsync();
            await poller.WaitAsync(CallDeadline * 2);
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"soak: {calls.Count} docker calls ({polls} poll rounds) in {soak.Elapsed.TotalSeconds:F1} s"));
        foreach (IGrouping<string, (string What, double Ms, CommandResult? Result, string? Error)> kind in calls.GroupBy(c => c.What))
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {kind.Key}: {kind.Count()} calls, slowest {kind.Max(c => c.Ms):F0} ms"));
        }

        string[] failures = [.. calls.Where(c => c.Error is not null).Select(c => $"{c.What}: {c.Error}\n{c.Result?.ToString() ?? ""}")];
        Assert.True(failures.Length == 0, $"{failures.Length} docker call(s) failed or passed their deadline:\n{string.Join("\n\n", failures)}\n--- end of dockerd's log ---\n{Tail(docker.Log, 30)}");

        // What the builds made runs: COPY's files and RUN's output are in each image.
        for (int i = 1; i <= Builds; i++)
        {
            Assert.Equal($"hello from build {i}\n", await Call("run built", CallDeadline, "run", "--rm", $"soak/seed-{i}:1"));
        }

        // Every cycle removed its container and every build its intermediate ones: no container, and no writable layer
        // left in the store.
        Assert.Equal("", (await Call("ps -aq", CallDeadline, "ps", "-aq"))?.Trim());
        IReadOnlyList<JsonElement> layers = await env.LayersAsync();
        Assert.DoesNotContain(layers, l => l.GetProperty("state").GetString() != "sealed");
    }

    private static string Tail(string text, int lines) => string.Join('\n', text.Split('\n').TakeLast(lines));
}
