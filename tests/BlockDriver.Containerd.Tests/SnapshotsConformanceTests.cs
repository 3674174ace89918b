using System.Runtime.CompilerServices;
using BlockDriver.Containerd.Api;
using Grpc.Core;
using Xunit.Abstractions;

namespace BlockDriver.Containerd.Tests;

/// <summary>
/// The cases of containerd's snapshots/testsuite (which <see cref="ContainerdSuiteTests"/> runs itself, unmodified),
/// over the gRPC service through its real socket against a real <c>blockdriver daemon --containerd-socket</c>,
/// mounting the returned mounts with mount(8) as containerd does, plus what the suite does not cover (error codes,
/// Usage, Cleanup, a daemon killed and started again, writes through a mount after its Commit). As in the suite, a
/// snapshot is committed still mounted where the suite does so, and a parentless snapshot is empty (no lost+found).
/// </summary>
[Collection(ContainerdTestCollection.Name)]
public sealed class SnapshotsConformanceTests : IClassFixture<SnapshotterFixture>, IAsyncLifetime
{
    private readonly SnapshotterDaemon _daemon;
    private readonly ITestOutputHelper _output;
    private SnapshotterClient? _client;

    public SnapshotsConformanceTests(SnapshotterFixture fixture, ITestOutputHelper output)
    {
        _daemon = fixture.Daemon;
        _daemon.Output = output;
        _output = output;
    }

    private SnapshotterClient S => _client ?? throw new InvalidOperationException("No client.");

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.UnmountAllAsync();
        }
    }

    [Fact]
    public async Task Basic_prepare_commit_prepare_view_and_remove_work_like_containerds()
    {
        Use();
        string preparing = await S.MountAsync(await S.PrepareAsync("preparing"), "preparing");
        await File.WriteAllTextAsync(Path.Combine(preparing, "foo"), "foo\n");
        Directory.CreateDirectory(Path.Combine(preparing, "a/b/c"));
        await S.UnmountAsync(preparing);
        await S.CommitAsync("committed", "preparing");

        Info si = await S.StatAsync("committed");
        Assert.Equal("", si.Parent);
        Assert.Equal(Kind.Committed, si.Kind);
        await Rpc.FailsWith(StatusCode.NotFound, () => S.StatAsync("preparing"));

        string next = await S.MountAsync(await S.PrepareAsync("nextlayer", "committed"), "next");
        Assert.Equal(["a/", "a/b/", "a/b/c/", "foo=foo\n"], Tree(next));
        await File.WriteAllTextAsync(Path.Combine(next, "bar"), "bar\n");
        await File.WriteAllTextAsync(Path.Combine(next, "foo"), "bar\n");
        Directory.Delete(Path.Combine(next, "a/b"), recursive: true);
        Info ni = await S.StatAsync("nextlayer");
        Assert.Equal("committed", ni.Parent);
        Assert.Equal(Kind.Active, ni.Kind);
        await S.UnmountAsync(next);
        await S.CommitAsync("committed-next", "nextlayer");

        Info si2 = await S.StatAsync("committed-next");
        Assert.Equal("committed", si2.Parent);
        Assert.Equal(Kind.Committed, si2.Kind);
        await Rpc.FailsWith(StatusCode.NotFound, () => S.StatAsync("nextlayer"));

        List<Info> walked = await S.ListAsync();
        Assert.Equal(2, walked.Count);
        Assert.Equal(await S.StatAsync("committed"), walked.Single(i => i.Name == "committed"));
        Assert.Equal(si2, walked.Single(i => i.Name == "committed-next"));

        string view = await S.MountAsync(await S.ViewAsync("nextnextlayer", "committed-next"), "view");
        Assert.Equal(["a/", "bar=bar\n", "foo=bar\n"], Tree(view));
        await S.UnmountAsync(view);
        await S.RemoveAsync("nextnextlayer");
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => S.RemoveAsync("committed"));
        await S.RemoveAsync("committed-next");
        await S.RemoveAsync("committed");
        Assert.Empty(await S.ListAsync());
    }

    [Fact]
    public async Task Stat_of_an_active_and_a_committed_snapshot_gives_name_kind_and_parent()
    {
        Use();
        string preparing = await S.MountAsync(await S.PrepareAsync("preparing"), "preparing");
        await File.WriteAllTextAsync(Path.Combine(preparing, "foo"), "foo\n");
        Info active = await S.StatAsync("preparing");
        Assert.Equal(("preparing", Kind.Active, ""), (active.Name, active.Kind, active.Parent));
        await S.CommitAsync("committed", "preparing");
        Info committed = await S.StatAsync("committed");
        Assert.Equal(("committed", Kind.Committed, ""), (committed.Name, committed.Kind, committed.Parent));
    }

    [Fact]
    public async Task A_grandparent_is_reached_through_the_parent()
    {
        Use();
        string preparing = await S.MountAsync(await S.PrepareAsync("preparing"), "preparing");
        await File.WriteAllTextAsync(Path.Combine(preparing, "foo"), "foo\n");
        await S.CommitAsync("snapA", "preparing");
        string next = await S.MountAsync(await S.PrepareAsync("next", "snapA"), "next");
        Assert.Equal(["foo=foo\n"], Tree(next));
        await File.WriteAllTextAsync(Path.Combine(next, "foo"), "foo bar\n");
        await S.CommitAsync("snapB", "next");

        Info a = await S.StatAsync("snapA");
        Info b = await S.StatAsync("snapB");
        Info parentOfB = await S.StatAsync(b.Parent);
        Assert.Equal("", a.Parent);
        Assert.Equal("snapA", b.Parent);
        Assert.Equal("", parentOfB.Parent);
    }

    [Fact]
    public async Task Prepare_or_view_with_a_key_in_use_fails_with_AlreadyExists()
    {
        Use();
        await S.PrepareAsync("preparing");
        await S.CommitAsync("snapA", "preparing");
        await S.PrepareAsync("newlayer", "snapA");
        await Rpc.FailsWith(StatusCode.AlreadyExists, () => S.ViewAsync("newlayer", "snapA"));
        await S.PrepareAsync("prepLayer", "snapA");
        await Rpc.FailsWith(StatusCode.AlreadyExists, () => S.PrepareAsync("prepLayer", "snapA"));
        await S.ViewAsync("viewLayer", "snapA");
        await Rpc.FailsWith(StatusCode.AlreadyExists, () => S.ViewAsync("viewLayer", "snapA"));
        await Rpc.FailsWith(StatusCode.AlreadyExists, () => S.PrepareAsync("snapA"));
        Assert.Equal(4, (await S.ListAsync()).Count);
    }

    [Fact]
    public async Task Update_changes_only_labels_as_the_mask_says_and_refuses_immutable_fields()
    {
        Use();
        DateTime t1 = DateTime.UtcNow;
        await BaseTestSnapshotsAsync();
        DateTime t2 = DateTime.UtcNow;
        (string Name, Kind Kind, string Parent)[] cases =
        [
            ("c1", Kind.Committed, ""), ("c2", Kind.Committed, "c1"), ("a1", Kind.Active, "c2"),
            ("a2", Kind.Active, ""), ("v1", Kind.View, "c2"), ("v2", Kind.View, ""),
        ];
        foreach ((string name, Kind kind, string parent) in cases)
        {
            Info st = await S.StatAsync(name);
            DateTime created = st.CreatedAt.ToDateTime();
            Assert.InRange(created, t1, t2);
            Assert.Equal(st.CreatedAt, st.UpdatedAt);
            Assert.Equal((name, kind, parent), (st.Name, st.Kind, st.Parent));

            string rootTime = DateTime.UtcNow.ToString("O");
            var expected = new Dictionary<string, string> { ["l1"] = "v1", ["l2"] = "v2", ["l3"] = "v3", ["containerd.io/gc.root"] = rootTime };
            st.Parent = "doesnotexist";
            st.Labels.Clear();
            st.Labels.Add(expected);
            DateTime u1 = DateTime.UtcNow;
            st = await S.UpdateAsync(st);
            DateTime u2 = DateTime.UtcNow;
            Assert.Equal(created, st.CreatedAt.ToDateTime());
            Assert.InRange(st.UpdatedAt.ToDateTime(), u1, u2);
            Assert.Equal((name, kind, parent), (st.Name, st.Kind, st.Parent));
            Assert.Equal(expected, st.Labels);

            st.Labels.Clear();
            st.Labels.Add(new Dictionary<string, string> { ["l1"] = "updated", ["l4"] = "v4" });
            st = await S.UpdateAsync(st, "labels.l1", "labels.l2");
            Assert.Equal(new Dictionary<string, string> { ["l1"] = "updated", ["l3"] = "v3", ["containerd.io/gc.root"] = rootTime }, st.Labels);

            expected = new Dictionary<string, string> { ["l4"] = "v4", ["containerd.io/gc.root"] = rootTime };
            st.Labels.Clear();
            st.Labels.Add(expected);
            st = await S.UpdateAsync(st, "labels");
            Assert.Equal(expected, st.Labels);
            Assert.Equal(expected, (await S.StatAsync(name)).Labels);

            st.Parent = "doesnotexist";
            await Rpc.FailsWith(StatusCode.InvalidArgument, () => S.UpdateAsync(st, "parent"));
            await Rpc.FailsWith(StatusCode.InvalidArgument, () => S.UpdateAsync(st, "labels.l9", "kind"));
            Assert.Equal(expected, (await S.StatAsync(name)).Labels);
        }

        Info missing = (await S.StatAsync("c1")).Clone();
        missing.Name = "nope";
        await Rpc.FailsWith(StatusCode.NotFound, () => S.UpdateAsync(missing));
    }

    [Fact]
    public async Task Keys_are_reusable_after_remove_and_a_removed_name_can_be_committed_again()
    {
        Use();
        await S.PrepareAsync("committed-a");
        await S.CommitAsync("committed-1", "committed-a");
        await S.PrepareAsync("reuse-1", "committed-1");
        await S.RemoveAsync("reuse-1");
        await S.ViewAsync("reuse-1", "committed-1");
        await S.RemoveAsync("reuse-1");
        await S.PrepareAsync("reuse-1");
        await S.RemoveAsync("committed-1");
        await S.CommitAsync("committed-1", "reuse-1");
        Info info = await S.StatAsync("committed-1");
        Assert.Equal(Kind.Committed, info.Kind);
        await Rpc.FailsWith(StatusCode.NotFound, () => S.RemoveAsync("reuse-1"));
    }

    [Fact]
    public async Task Removing_an_intermediate_snapshot_fails_with_FailedPrecondition_until_its_children_are_gone()
    {
        Use();
        string b = await S.MountAsync(await S.PrepareAsync("base"), "base");
        await S.CommitAsync("committed-base", "base");
        await S.PrepareAsync("intermediate", "committed-base");
        await S.CommitAsync("committed-inter", "intermediate");
        await S.PrepareAsync("toplayer", "committed-inter");
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => S.RemoveAsync("committed-inter"));
        await S.RemoveAsync("toplayer");
        await S.RemoveAsync("committed-inter");

        // The base's old mount still writes to a child of committed-base; once it is gone, so is the child.
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => S.RemoveAsync("committed-base"));
        await S.UnmountAsync(b);
        await S.RemoveAsync("committed-base");
        Assert.Empty(await S.ListAsync());
    }

    [Fact]
    public async Task A_view_mounts_read_only()
    {
        Use();
        await S.PrepareAsync("preparing");
        await S.CommitAsync("committed", "preparing");
        IReadOnlyList<Api.Mount> mounts = await S.ViewAsync("view", "committed");
        Assert.Contains("ro", Assert.Single(mounts).Options);
        string dir = await S.MountAsync(mounts, "view");
        IOException refused = Assert.ThrowsAny<IOException>(() => File.WriteAllText(Path.Combine(dir, "testfile"), "testcontent"));
        _output.WriteLine("write refused as expected: " + refused.Message);
        await S.UnmountAsync(dir);
        await S.RemoveAsync("view");
        await S.RemoveAsync("committed");
    }

    [Fact]
    public async Task Layer_changes_deletions_renames_and_hard_links_carry_through_commits()
    {
        Use();
        // containerd's LayerFileupdate, RemoveDirectoryInLowerLayer, DeletedFilesInChildSnapshot, MoveFileFromLowerLayer
        // and Rename in one chain, each layer checked through a view of its commit.
        Action<string>[] layers =
        [
            d =>
            {
                Directory.CreateDirectory(Path.Combine(d, "dir1"));
                File.WriteAllText(Path.Combine(d, "dir1/f1"), "Hello");
                Directory.CreateDirectory(Path.Combine(d, "dir2"));
                File.WriteAllText(Path.Combine(d, "dir2/f2"), "...");
                File.WriteAllText(Path.Combine(d, "foo"), "foo\n");
                File.WriteAllText(Path.Combine(d, "foobar"), "foobar\n");
                Directory.CreateDirectory(Path.Combine(d, "somedir/sub"));
            },
            d =>
            {
                Directory.CreateDirectory(Path.Combine(d, "dir3"));
                File.WriteAllText(Path.Combine(d, "dir3/f1"), "Hello");
                Directory.Delete(Path.Combine(d, "dir1"), recursive: true);
                File.CreateSymbolicLink(Path.Combine(d, "link"), "dir3/f1");
                SnapshotterDaemon.Run("ln", Path.Combine(d, "dir2/f2"), Path.Combine(d, "dir3/f2")).GetAwaiter().GetResult();
                File.Delete(Path.Combine(d, "dir2/f2"));
                File.Delete(Path.Combine(d, "foobar"));
                File.WriteAllText(Path.Combine(d, "foo"), "foo updated\n");
                Directory.Delete(Path.Combine(d, "somedir"), recursive: true);
            },
            d => File.Move(Path.Combine(d, "dir3/f1"), Path.Combine(d, "dir2/renamed")),
        ];
        string[][] expected =
        [
            ["dir1/", "dir1/f1=Hello", "dir2/", "dir2/f2=...", "foo=foo\n", "foobar=foobar\n", "somedir/", "somedir/sub/"],
            ["dir2/", "dir3/", "dir3/f1=Hello", "dir3/f2=...", "foo=foo updated\n", "link->dir3/f1"],
            ["dir2/", "dir2/renamed=Hello", "dir3/", "dir3/f2=...", "foo=foo updated\n", "link->dir3/f1"],
        ];
        string parent = "";
        for (int i = 0; i < layers.Length; i++)
        {
            string dir = await S.MountAsync(await S.PrepareAsync($"prepare-{i}", parent), $"l{i}");
            layers[i](dir);
            await S.UnmountAsync(dir);
            await S.CommitAsync($"layer-{i}", $"prepare-{i}");
            string view = await S.MountAsync(await S.ViewAsync($"check-{i}", $"layer-{i}"), $"check{i}");
            Assert.Equal(expected[i], Tree(view));
            await S.UnmountAsync(view);
            await S.RemoveAsync($"check-{i}");
            parent = $"layer-{i}";
        }
    }

    [Fact]
    public async Task Wrong_kinds_unknown_keys_taken_names_and_mounted_devices_fail_with_containerds_codes_and_change_nothing()
    {
        Use();
        await Rpc.FailsWith(StatusCode.NotFound, () => S.PrepareAsync("a", "no-such-parent"));
        await Rpc.FailsWith(StatusCode.InvalidArgument, () => S.PrepareAsync(""));
        await S.PrepareAsync("active");
        await Rpc.FailsWith(StatusCode.InvalidArgument, () => S.PrepareAsync("child", "active"));
        await Rpc.FailsWith(StatusCode.NotFound, () => S.CommitAsync("x", "no-such-key"));
        await Rpc.FailsWith(StatusCode.NotFound, () => S.RemoveAsync("no-such-key"));
        await Rpc.FailsWith(StatusCode.NotFound, () => S.MountsAsync("no-such-key"));
        await Rpc.FailsWith(StatusCode.NotFound, () => S.UsageAsync("no-such-key"));

        // Removing a snapshot whose device is mounted would cut a live file system off.
        string dir = await S.MountAsync(await S.MountsAsync("active"), "active");
        await File.WriteAllTextAsync(Path.Combine(dir, "kept"), "kept");
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => S.RemoveAsync("active"));
        Assert.Equal(Kind.Active, (await S.StatAsync("active")).Kind);
        await S.UnmountAsync(dir);
        await S.CommitAsync("c", "active");

        await S.ViewAsync("view", "c");
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => S.CommitAsync("c2", "view"));
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => S.MountsAsync("c"));
        await S.PrepareAsync("other", "c");
        await Rpc.FailsWith(StatusCode.AlreadyExists, () => S.CommitAsync("c", "other"));
        await Rpc.FailsWith(StatusCode.AlreadyExists, () => S.CommitAsync("view", "other"));
        var big = new Dictionary<string, string> { ["k"] = new string('x', 4096) };
        await Rpc.FailsWith(StatusCode.InvalidArgument, () => S.PrepareAsync("big", "c", big));

        List<Info> all = await S.ListAsync();
        Assert.Equal(["c", "other", "view"], all.Select(i => i.Name).Order(StringComparer.Ordinal));
        string again = await S.MountAsync(await S.ViewAsync("check", "c"), "check");
        Assert.Equal(["kept=kept"], Tree(again));
        await S.UnmountAsync(again);
    }

    [Fact]
    public async Task A_mounted_snapshot_commits_what_was_written_before_and_later_writes_through_its_mount_go_elsewhere()
    {
        Use();
        IReadOnlyList<string> devicesBefore = _daemon.LoopDevices();
        string dir = await S.MountAsync(await S.PrepareAsync("active"), "active");
        Assert.Empty(Tree(dir));
        await File.WriteAllTextAsync(Path.Combine(dir, "before"), "before");
        Directory.CreateDirectory(Path.Combine(dir, "d"));
        string big = string.Concat(Enumerable.Range(0, 300_000).Select(i => $"{i}\n"));
        await File.WriteAllTextAsync(Path.Combine(dir, "d/big"), big);
        await S.CommitAsync("c", "active");
        await Rpc.FailsWith(StatusCode.NotFound, () => S.StatAsync("active"));
        Assert.Equal(Kind.Committed, (await S.StatAsync("c")).Kind);

        // After the commit: the old mount still works, but what it writes is not in the committed snapshot.
        await File.WriteAllTextAsync(Path.Combine(dir, "after"), "after");
        await File.WriteAllTextAsync(Path.Combine(dir, "before"), "changed after");
        Assert.Equal(["after=after", "before=changed after", "d/", "d/big=" + big], Tree(dir));

        // The committed image is a clean ext4 (the freeze emptied its journal): e2fsck through a view's device.
        string viewDevice = Assert.Single(await S.ViewAsync("fsck", "c")).Source;
        ProcessResult fsck = await ChildProcess.RunAsync("e2fsck", ["-f", "-n", viewDevice], "/");
        Assert.True(fsck.ExitCode == 0, $"e2fsck -fn of the committed snapshot: {fsck}");
        await S.RemoveAsync("fsck");

        // Children at once, with exactly what was written before Commit.
        string child = await S.MountAsync(await S.PrepareAsync("child", "c"), "child");
        Assert.Equal(["before=before", "d/", "d/big=" + big], Tree(child));
        await S.UnmountAsync(child);
        await S.RemoveAsync("child");

        // The old mount writes to a child of c: c cannot go before it is unmounted, and then goes with it.
        await Rpc.FailsWith(StatusCode.FailedPrecondition, () => S.RemoveAsync("c"));
        await S.UnmountAsync(dir);
        await S.RemoveAsync("c");
        Assert.Empty(await S.ListAsync());
        Assert.Equal(devicesBefore, _daemon.LoopDevices());
    }

    [Fact]
    public async Task List_matches_stat_and_filters_by_name_parent_kind_and_labels()
    {
        Use();
        await BaseTestSnapshotsAsync();
        Info a1 = await S.StatAsync("a1");
        a1.Labels["containerd.io/snapshot.ref"] = "sha256:abc";
        a1.Labels["team"] = "blue";
        await S.UpdateAsync(a1, "labels.containerd.io/snapshot.ref", "labels.team");

        List<Info> all = await S.ListAsync();
        Assert.Equal(6, all.Count);
        foreach (Info info in all)
        {
            Assert.Equal(await S.StatAsync(info.Name), info);
        }

        Assert.Equal(["a1", "v1"], Names(await S.ListAsync("parent==c2")));
        Assert.Equal(["c1", "c2"], Names(await S.ListAsync("kind==committed")));
        Assert.Equal(["v1", "v2"], Names(await S.ListAsync("kind==view")));
        Assert.Equal(["c2"], Names(await S.ListAsync("name==c2")));
        Assert.Equal(["a1"], Names(await S.ListAsync("labels.\"containerd.io/snapshot.ref\"==sha256:abc,parent==\"c2\"")));
        Assert.Equal(["a1"], Names(await S.ListAsync("labels.team")));
        Assert.Equal(["a1", "a2"], Names(await S.ListAsync("kind==active", "labels.team==nobody")));
        Assert.Equal(["a1", "a2", "v1", "v2"], Names(await S.ListAsync("kind!=committed")));
        Assert.Equal(["v1", "v2"], Names(await S.ListAsync("name~=^v[0-9]$")));
        await Rpc.FailsWith(StatusCode.InvalidArgument, () => S.ListAsync("size==3"));
        await Rpc.FailsWith(StatusCode.InvalidArgument, () => S.ListAsync("name=="));
        await Rpc.FailsWith(StatusCode.InvalidArgument, () => S.ListAsync("name~=("));
    }

    [Fact]
    public async Task Usage_is_the_snapshots_own_allocation_and_inodes()
    {
        Use();
        string dir = await S.MountAsync(await S.PrepareAsync("prepare"), "usage");
        byte[] data = new byte[4 << 20];
        Random.Shared.NextBytes(data);
        await File.WriteAllBytesAsync(Path.Combine(dir, "data.bin"), data);
        for (int i = 0; i < 10; i++)
        {
            await File.WriteAllTextAsync(Path.Combine(dir, $"small-{i}"), "x");
        }

        await SnapshotterDaemon.Run("sync", "-f", dir);
        UsageResponse active = await S.UsageAsync("prepare");
        Assert.True(active.Size >= data.Length, $"active size {active.Size} < {data.Length}");
        await S.UnmountAsync(dir);
        await S.CommitAsync("committed", "prepare");
        UsageResponse committed = await S.UsageAsync("committed");
        Assert.InRange(committed.Size, data.Length, data.Length + (16L << 20));
        Assert.Equal(11, committed.Inodes);

        await S.ViewAsync("view", "committed");
        UsageResponse view = await S.UsageAsync("view");
        Assert.Equal(0, view.Inodes);
        Assert.True(view.Size < (1 << 20), $"an empty view uses {view.Size} bytes");
    }

    [Fact]
    public async Task A_chain_of_128_layers_each_adding_a_file_reads_back_whole()
    {
        Use();
        const int Depth = 128;
        string parent = "";
        for (int i = 0; i < Depth; i++)
        {
            string dir = await S.MountAsync(await S.PrepareAsync($"prepare-{i}", parent), $"layer");
            await File.WriteAllTextAsync(Path.Combine(dir, $"layer-{i:D3}"), $"content of layer {i}\n");
            await S.UnmountAsync(dir);
            await S.CommitAsync($"layer-{i}", $"prepare-{i}");
            parent = $"layer-{i}";
        }

        string top = await S.MountAsync(await S.ViewAsync("top", parent), "top");
        Assert.Equal(Enumerable.Range(0, Depth).Select(i => $"layer-{i:D3}=content of layer {i}\n"), Tree(top));
        await S.UnmountAsync(top);
        Assert.Equal("layer-126", (await S.StatAsync(parent)).Parent);

        await S.RemoveAsync("top");
        for (int i = Depth - 1; i >= 0; i--)
        {
            await S.RemoveAsync($"layer-{i}");
        }

        Assert.Empty(await S.ListAsync());
    }

    [Fact]
    public async Task After_a_killed_daemon_starts_again_active_snapshots_and_views_are_attached_with_their_data()
    {
        Use();
        string dir = await S.MountAsync(await S.PrepareAsync("base"), "base");
        await File.WriteAllTextAsync(Path.Combine(dir, "one"), "1");
        await S.UnmountAsync(dir);
        await S.CommitAsync("c", "base");
        dir = await S.MountAsync(await S.PrepareAsync("active", "c"), "active");
        await File.WriteAllTextAsync(Path.Combine(dir, "two"), "2");
        await S.UnmountAsync(dir);
        await S.ViewAsync("view", "c");

        await _daemon.KillAsync();
        _daemon.Start();

        dir = await S.MountAsync(await S.MountsAsync("active"), "active-again");
        Assert.Equal(["one=1", "two=2"], Tree(dir));
        await S.UnmountAsync(dir);
        dir = await S.MountAsync(await S.MountsAsync("view"), "view-again");
        Assert.Equal(["one=1"], Tree(dir));
        await S.UnmountAsync(dir);
        await S.CommitAsync("c2", "active");
        Assert.Equal("c", (await S.StatAsync("c2")).Parent);
        Assert.Empty(_daemon.Leftovers());
    }

    [Fact]
    public async Task Cleanup_leaves_live_snapshots_alone()
    {
        Use();
        await BaseTestSnapshotsAsync();
        List<Info> before = await S.ListAsync();
        await S.CleanupAsync();
        Assert.Equal(before, await S.ListAsync());
        Assert.NotEmpty(await S.MountsAsync("a1"));
    }

    private async Task BaseTestSnapshotsAsync()
    {
        await S.PrepareAsync("c1-a");
        await S.CommitAsync("c1", "c1-a");
        await S.PrepareAsync("c2-a", "c1");
        await S.CommitAsync("c2", "c2-a");
        await S.PrepareAsync("a1", "c2");
        await S.PrepareAsync("a2");
        await S.ViewAsync("v1", "c2");
        await S.ViewAsync("v2");
    }

    private void Use([CallerMemberName] string test = "")
    {
        // A snapshotter name per test: its own key space in the shared daemon.
        _client = new SnapshotterClient(_daemon, "t" + (uint)test.GetHashCode(StringComparison.Ordinal));
    }

    private static List<string> Names(List<Info> infos) => [.. infos.Select(i => i.Name).Order(StringComparer.Ordinal)];

    /// <summary>Every entry under <paramref name="root"/>, sorted: "dir/", "file=content", "link->target".</summary>
    internal static List<string> Tree(string root)
    {
        var entries = new List<string>();
        foreach (string path in Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories))
        {
            string rel = Path.GetRelativePath(root, path);
            var info = new FileInfo(path);
            entries.Add(info.LinkTarget is string target ? $"{rel}->{target}"
                : info.Attributes.HasFlag(FileAttributes.Directory) ? rel + "/"
                : $"{rel}={File.ReadAllText(path)}");
        }

        entries.Sort(StringComparer.Ordinal);
        return entries;
    }
}
