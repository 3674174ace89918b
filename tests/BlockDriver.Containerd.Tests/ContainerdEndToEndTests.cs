using BlockDriver.Containerd.Api;
using BlockDriver.Interop;
using Xunit.Abstractions;

namespace BlockDriver.Containerd.Tests;

/// <summary>
/// Debian's containerd 1.6, started by the test with its own config (a <c>proxy_plugins.blockdriver</c> entry naming
/// the daemon's socket), root, state and socket: image import with several layers and whiteouts, <c>ctr run</c>,
/// <c>ctr snapshots</c>, a containerd restart, a blockdriver daemon restart, and removal that frees the space; no
/// mount, loop device or process (containerd, shims) left, even when the test fails.
/// </summary>
[Collection(ContainerdTestCollection.Name)]
public sealed class ContainerdEndToEndTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Namespace = "blockdriver-e2e";
    private readonly SnapshotterDaemon _daemon = new() { Output = output };
    private DaemonProcess? _containerd;

    private string ContainerdDir => _daemon.Dir("containerd");

    private string Address => Path.Combine(ContainerdDir, "c.sock");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        // containerd first (its shims and mounts hold the devices), then the daemon; the fixture kills and unmounts
        // whatever is still there.
        if (_containerd is { HasExited: false } containerd)
        {
            await containerd.TerminateAsync();
        }

        _containerd?.Dispose();
        await _daemon.DisposeAsync();
    }

    [ContainerdFact]
    public async Task Ctr_imports_runs_lists_and_removes_images_on_the_blockdriver_snapshotter_across_restarts()
    {
        IReadOnlyList<string> missing = ContainerdFactAttribute.Missing();
        Assert.True(missing.Count == 0, ContainerdFactAttribute.Explain(missing));
        _daemon.Start();
        Directory.CreateDirectory(ContainerdDir);
        string config = Path.Combine(ContainerdDir, "config.toml");
        await File.WriteAllTextAsync(config, $"""
            version = 2
            root = "{ContainerdDir}/root"
            state = "{ContainerdDir}/state"
            disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

            [grpc]
              address = "{Address}"

            [ttrpc]
              address = "{Address}.ttrpc"

            [proxy_plugins]
              [proxy_plugins.blockdriver]
                type = "snapshot"
                address = "{_daemon.Socket}"
            """);
        StartContainerd(config);

        string image = _daemon.Dir("image.tar");
        ImageArchive.Write(image);
        await CtrAsync("images", "import", "--snapshotter", "blockdriver", image);
        Assert.Contains(ImageArchive.Reference, (await CtrAsync("images", "ls", "-q")).Stdout);
        string ls = (await CtrAsync("snapshots", "--snapshotter", "blockdriver", "ls")).Stdout;
        Assert.Equal(3, CountLines(ls, "Committed"));

        // A container reads the image's files (whiteouts and an opaque directory applied) and writes its own.
        ProcessResult run = await CtrAsync("run", "--rm", "--snapshotter", "blockdriver", ImageArchive.Reference, "e2e-run",
            "/bin/sh", "-c", "cat /etc/a.txt /etc/b.txt /etc/c.txt; ls -A /data; ls -A /data/dir; echo mine > /mine.txt; cat /mine.txt");
        Assert.Equal("from layer one\nfrom layer two\nfrom layer three\ndir\ny\nmine\n", run.Stdout);

        // A kept container: its snapshot is listed, described, measured and shown in the tree.
        await CtrAsync("containers", "create", "--snapshotter", "blockdriver", ImageArchive.Reference, "kept", "--",
            "/bin/sh", "-c", "cat /kept.txt 2>/dev/null; echo persisted >> /kept.txt; sync");
        Assert.Equal("", (await CtrAsync("tasks", "start", "kept")).Stdout);
        ls = (await CtrAsync("snapshots", "--snapshotter", "blockdriver", "ls")).Stdout;
        Assert.Matches(@"(?m)^kept\s+sha256:[0-9a-f]{64}\s+Active", ls);
        string info = (await CtrAsync("snapshots", "--snapshotter", "blockdriver", "info", "kept")).Stdout;
        Assert.Contains("\"Kind\": \"Active\"", info, StringComparison.Ordinal);
        string usage = (await CtrAsync("snapshots", "--snapshotter", "blockdriver", "usage", "-b", "kept")).Stdout;
        Assert.Matches(@"(?m)^kept\s+[1-9][0-9]*\s+[0-9]+", usage);
        string tree = (await CtrAsync("snapshots", "--snapshotter", "blockdriver", "tree")).Stdout;
        Assert.Contains("kept", tree, StringComparison.Ordinal);
        Assert.Equal(4, tree.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);

        // containerd restarts: everything stays usable, the container sees what it wrote.
        await RestartContainerdAsync(config);
        Assert.Equal(4, (await CtrAsync("snapshots", "--snapshotter", "blockdriver", "ls")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length - 1);
        Assert.Equal("persisted\n", (await CtrAsync("tasks", "start", "kept")).Stdout);

        // The blockdriver daemon restarts: the active snapshot is attached again (perhaps on another loop device).
        await _daemon.StopAsync();
        _daemon.Start();
        await WaitForSnapshotterAsync();
        Assert.Equal("persisted\npersisted\n", (await CtrAsync("tasks", "start", "kept")).Stdout);
        Assert.Equal("from layer three\n", (await CtrAsync("run", "--rm", "--snapshotter", "blockdriver", ImageArchive.Reference, "e2e-run2", "/bin/cat", "/etc/c.txt")).Stdout);

        // Removal: containerd's garbage collector removes the snapshots, and the store's space with them.
        long before = SnapshotBytes();
        Assert.True(before > 0);
        await CtrAsync("containers", "rm", "kept");
        await CtrAsync("images", "rm", "--sync", ImageArchive.Reference);
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        List<Info> left;
        do
        {
            await Task.Delay(500);
            left = await new SnapshotterClient(_daemon, "blockdriver").ListAsync();
        }
        while (left.Count > 0 && DateTime.UtcNow < deadline);
        Assert.Empty(left);
        Assert.Equal("", (await CtrAsync("snapshots", "--snapshotter", "blockdriver", "ls")).Stdout.Split('\n', 2)[1].Trim());
        Assert.Equal(0, SnapshotBytes());
        Assert.Empty(_daemon.LoopDevices());

        await _containerd!.TerminateAsync();
        Assert.Empty(_daemon.Leftovers());
        await _daemon.StopAsync();
        Assert.Empty(_daemon.Leftovers());
    }

    private void StartContainerd(string config)
    {
        _containerd = DaemonProcess.Start("containerd", "/usr/bin/containerd", ["--config", config, "--log-level", "info"], output);
        _containerd.WaitForLine("containerd successfully booted", TimeSpan.FromSeconds(60));
    }

    private async Task RestartContainerdAsync(string config)
    {
        await _containerd!.TerminateAsync();
        _containerd.Dispose();
        StartContainerd(config);
    }

    // containerd redials the proxy plugin with a backoff: until then its calls fail with "unavailable".
    private async Task WaitForSnapshotterAsync()
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            ProcessResult result = await ChildProcess.RunAsync("/usr/bin/ctr", ["-a", Address, "-n", Namespace, "snapshots", "--snapshotter", "blockdriver", "ls"], _daemon.TempDir);
            if (result.ExitCode == 0)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"containerd did not reach the restarted snapshotter: {result}");
            await Task.Delay(500);
        }
    }

    private async Task<ProcessResult> CtrAsync(params string[] args)
    {
        ProcessResult result = await ChildProcess.RunAsync("/usr/bin/ctr", ["-a", Address, "-n", Namespace, .. args], _daemon.TempDir);
        output.WriteLine($"$ ctr {string.Join(' ', args)}\n{result}");
        Assert.True(result.ExitCode == 0, $"ctr {string.Join(' ', args)} failed: {result}");
        return result;
    }

    // Bytes allocated by the store's snapshot layers (those the snapshotter made: ctrd-*).
    private long SnapshotBytes() =>
        Directory.EnumerateFiles(Path.Combine(_daemon.Root, "layers"), "ctrd-*").Sum(f => SparseFile.AllocatedBytes(f));

    private static int CountLines(string text, string word) =>
        text.Split('\n').Count(l => l.Contains(word, StringComparison.Ordinal));
}
