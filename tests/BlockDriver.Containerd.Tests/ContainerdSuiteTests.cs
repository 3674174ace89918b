using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace BlockDriver.Containerd.Tests;

/// <summary>
/// containerd's own snapshotter conformance suite (<c>snapshots/testsuite.SnapshotterSuite</c> of Debian's
/// golang-github-containerd-containerd-dev 1.6, unmodified) against the real <c>blockdriver daemon
/// --containerd-socket</c>, dialled through <c>snapshots/proxy</c> as containerd dials a proxy plugin: suite/ holds the
/// Go test, built once in GOPATH mode; each subtest runs on its own (<c>-test.run</c>), with a fresh daemon and store,
/// and fails with the Go output. Root: the suite mounts. Needs golang-go and golang-github-containerd-containerd-dev
/// (.ci/run installs them); without them it is skipped outside CI and fails in CI.
/// </summary>
[Collection(ContainerdTestCollection.Name)]
public sealed class ContainerdSuiteTests(ContainerdSuiteTests.SuiteBinary binary, ITestOutputHelper output) : IClassFixture<ContainerdSuiteTests.SuiteBinary>
{
    /// <summary>Where Debian's golang-github-containerd-containerd-dev puts the suite.</summary>
    public const string TestsuiteSource = "/usr/share/gocode/src/github.com/containerd/containerd/snapshots/testsuite/testsuite.go";

    private const string TopTest = "TestBlockdriverSnapshotter";

    // The one subtest the suite itself always skips (issues.go, checkRename: "rename test still fails on some kernels
    // with overlay"); any other skip is a failure.
    private const string SkippedBySuite = "Rename";

    private static readonly TimeSpan SubtestDeadline = TimeSpan.FromMinutes(10);

    /// <summary>The subtests of <c>SnapshotterSuite</c>, in its order; <see cref="The_subtest_list_is_the_suite_s"/>
    /// checks it against the suite's source.</summary>
    public static TheoryData<string> Subtests => new(Names);

    private static readonly string[] Names =
    [
        "Basic", "StatActive", "StatComitted", "TransitivityTest", "PreareViewFailingtest", "Update", "Remove", "Walk",
        "LayerFileupdate", "RemoveDirectoryInLowerLayer", "Chown", "DirectoryPermissionOnCommit",
        "RemoveIntermediateSnapshot", "DeletedFilesInChildSnapshot", "MoveFileFromLowerLayer", "Rename", "ViewReadonly",
        "StatInWalk", "CloseTwice", "RootPermission", "128LayersMount",
    ];

    [SuiteFact]
    public void The_subtest_list_is_the_suite_s()
    {
        string source = File.ReadAllText(TestsuiteSource);
        int start = source.IndexOf("func SnapshotterSuite(", StringComparison.Ordinal);
        int end = source.IndexOf("\n}\n", start, StringComparison.Ordinal);
        string[] names = [.. Regex.Matches(source[start..end], "t\\.Run\\(\"([^\"]+)\"").Select(m => m.Groups[1].Value)];
        Assert.Equal(names, Names);
    }

    [SuiteTheory]
    [MemberData(nameof(Subtests))]
    public async Task Subtest_passes(string name)
    {
        string binaryPath = await binary.PathAsync();
        output.WriteLine($"suite binary {binaryPath} (go test -c took {binary.BuildTime.TotalSeconds:0} s)");
        using var temp = new TempDirectory("ctrd-suite");
        try
        {
            var clock = Stopwatch.StartNew();
            (int exitCode, string goOutput) = await SuiteBinary.RunAsync(binaryPath,
                ["-test.v", "-test.timeout", "10m", "-test.run", $"^{TopTest}$/^{Regex.Escape(name)}$"],
                "/",
                new Dictionary<string, string>
                {
                    ["TMPDIR"] = temp.FullName,
                    ["BLOCKDRIVER_DOTNET"] = SnapshotterDaemon.Dotnet,
                    ["BLOCKDRIVER_CLI"] = SnapshotterDaemon.CliPath,
                },
                SubtestDeadline);
            output.WriteLine($"{name}: exit {exitCode} after {clock.Elapsed.TotalSeconds:0.0} s");
            output.WriteLine(goOutput);
            string verdict = name == SkippedBySuite ? "SKIP" : "PASS";
            Assert.True(exitCode == 0 && goOutput.Contains($"--- {verdict}: {TopTest}/{name} ", StringComparison.Ordinal),
                $"containerd's testsuite subtest {name} did not {verdict} (exit {exitCode}):\n{goOutput}");
            Assert.Empty(HostLeaks.Find(temp.FullName));
        }
        finally
        {
            HostLeaks.RemoveOrThrow(temp.FullName);
        }
    }

    /// <summary>The suite's Go test binary, built once per test run with <c>go test -c</c> in GOPATH mode
    /// (GO111MODULE=off, GOPATH of a temp dir and /usr/share/gocode: no module proxy is needed or used).</summary>
    public sealed class SuiteBinary : IAsyncLifetime
    {
        private static readonly TimeSpan BuildDeadline = TimeSpan.FromMinutes(10);
        private readonly TempDirectory _temp = new("ctrd-suite-build");
        private Task<string>? _build;

        /// <summary>How long <c>go test -c</c> took.</summary>
        public TimeSpan BuildTime { get; private set; }

        public Task InitializeAsync() => Task.CompletedTask;

        public Task<string> PathAsync() => _build ??= BuildAsync();

        public Task DisposeAsync()
        {
            _temp.Dispose();
            return Task.CompletedTask;
        }

        public static async Task<(int ExitCode, string Output)> RunAsync(
            string program, IEnumerable<string> args, string workingDirectory, IReadOnlyDictionary<string, string> environment, TimeSpan deadline)
        {
            var start = new ProcessStartInfo(program)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = workingDirectory,
            };
            foreach (string arg in args)
            {
                start.ArgumentList.Add(arg);
            }

            foreach ((string key, string value) in environment)
            {
                start.Environment[key] = value;
            }

            using var process = Process.Start(start)!;
            var text = new StringBuilder();
            process.OutputDataReceived += (_, e) => Append(e.Data);
            process.ErrorDataReceived += (_, e) => Append(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                await process.WaitForExitAsync().WaitAsync(deadline);
            }
            catch (TimeoutException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                throw new TimeoutException($"{program} {string.Join(' ', args)} ran over {deadline.TotalMinutes:0} min; killed. Output:\n{Text()}");
            }

            // The exit is seen before the last output events: WaitForExit() without a timeout waits for them.
            process.WaitForExit();
            return (process.ExitCode, Text());

            void Append(string? line)
            {
                if (line is not null)
                {
                    lock (text)
                    {
                        text.AppendLine(line);
                    }
                }
            }

            string Text()
            {
                lock (text)
                {
                    return text.ToString();
                }
            }
        }

        private async Task<string> BuildAsync()
        {
            string source = Path.Combine(AppContext.BaseDirectory, "suite");
            string binary = _temp.GetFilePath("suite.test");
            string go = ChildProcess.Locate("go") ?? "/usr/lib/go/bin/go";
            var environment = new Dictionary<string, string>
            {
                ["GO111MODULE"] = "off",
                ["GOPATH"] = $"{_temp.GetFilePath("gopath")}:/usr/share/gocode",
                ["GOFLAGS"] = "",
                ["GOPROXY"] = "off",
                // Pure Go: no C compiler needed (nothing the suite imports needs cgo).
                ["CGO_ENABLED"] = "0",
            };
            if (Environment.GetEnvironmentVariable("GOCACHE") is null && Environment.GetEnvironmentVariable("HOME") is null &&
                Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is null)
            {
                environment["GOCACHE"] = _temp.GetFilePath("gocache");
            }

            var clock = Stopwatch.StartNew();
            (int exitCode, string output) = await RunAsync(go, ["test", "-c", "-o", binary, "."], source, environment, BuildDeadline);
            if (exitCode != 0)
            {
                throw new InvalidOperationException($"go test -c of {source} exited with {exitCode}:\n{output}");
            }

            BuildTime = clock.Elapsed;
            return binary;
        }
    }
}
