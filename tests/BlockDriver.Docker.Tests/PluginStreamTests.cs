using System.Formats.Tar;
using System.Net;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>A streamed Diff holds no lock: dockerd's layer Register (the classic builder's COPY and RUN commits, and
/// <c>docker commit</c>) opens the Diff of a mounted container layer and creates and fills a new layer over the same
/// parent before it reads the tar, and a client that reads slowly or never must not stall anyone else. Diff, Changes
/// and DiffSize read dockerd's parent argument as moby's drivers do: empty is the whole layer, an older ancestor the
/// difference from it.</summary>
[Collection(DockerTestCollection.Name)]
public sealed class PluginStreamTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task An_unread_diff_stream_blocks_no_call_on_its_layer_parent_or_siblings()
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        DaemonProcess daemon = test.StartDaemon();
        PluginClient plugin = test.Client();

        await plugin.OkAsync("Create", new { ID = "base" });
        Assert.Null((await plugin.ApplyDiffAsync("base", "", LayerTar.Build(LayerTar.Dir("etc"), LayerTar.File("etc/motd", "hello\n")))).Err);

        // The build container: mounted by Get, with more content than the socket and Kestrel buffer.
        await plugin.OkAsync("CreateReadWrite", new { ID = "build", Parent = "base" });
        string mount = (await plugin.OkAsync("Get", new { ID = "build" })).GetProperty("Dir").GetString()!;
        byte[] big = new byte[24 << 20];
        new Random(7).NextBytes(big);
        await File.WriteAllBytesAsync(Path.Combine(mount, "big.bin"), big);

        HttpResponseMessage diff = await plugin.OpenDiffAsync("build", "base").WaitAsync(Deadline);
        Stream body = await diff.Content.ReadAsStreamAsync();
        byte[] first = new byte[512];
        await body.ReadExactlyAsync(first).AsTask().WaitAsync(Deadline);

        // What Register does next, then everything else on the parent, the layer and a sibling.
        await Within(plugin.OkAsync("Create", new { ID = "committed", Parent = "base" }));
        Assert.Null((await Within(plugin.ApplyDiffAsync("committed", "base", LayerTar.Build(LayerTar.File("small", "x\n"))))).Err);
        await Within(plugin.OkAsync("CreateReadWrite", new { ID = "sibling", Parent = "base" }));
        await Within(plugin.OkAsync("Get", new { ID = "sibling" }));
        await Within(plugin.OkAsync("Changes", new { ID = "sibling", Parent = "base" }));
        await Within(plugin.OkAsync("DiffSize", new { ID = "sibling", Parent = "base" }));
        await Within(plugin.OkAsync("Put", new { ID = "sibling" }));
        await Within(plugin.OkAsync("Remove", new { ID = "sibling" }));
        await Within(plugin.OkAsync("Get", new { ID = "build" }));
        await Within(plugin.OkAsync("Put", new { ID = "build" }));
        await Within(plugin.OkAsync("Changes", new { ID = "build", Parent = "base" }));
        Assert.Contains("has 2 child layer(s)", await Within(plugin.FailAsync("Remove", new { ID = "base" })), StringComparison.Ordinal);
        await Within(plugin.OkAsync("CreateReadWrite", new { ID = "child", Parent = "committed" }));
        await Within(plugin.OkAsync("Remove", new { ID = "child" }));

        // The stream is whole once read: the big file byte for byte.
        using var rest = new MemoryStream();
        rest.Write(first);
        await body.CopyToAsync(rest).WaitAsync(Deadline);
        diff.Dispose();
        rest.Position = 0;
        using (var reader = new TarReader(rest))
        {
            TarEntry entry = await reader.GetNextEntryAsync() ?? throw new InvalidDataException("empty diff");
            Assert.Equal("big.bin", entry.Name);
            using var content = new MemoryStream();
            await entry.DataStream!.CopyToAsync(content);
            Assert.True(big.AsSpan().SequenceEqual(content.ToArray()), "the diff's big.bin differs from what was written");
        }

        // A client that goes away mid-stream releases the mounts the Diff took at once: the parent's temporary
        // mount goes, and the build layer keeps only its Get.
        HttpResponseMessage abandoned = await plugin.OpenDiffAsync("build", "base").WaitAsync(Deadline);
        Stream abandonedBody = await abandoned.Content.ReadAsStreamAsync();
        await abandonedBody.ReadExactlyAsync(first).AsTask().WaitAsync(Deadline);
        Assert.Equal(2, test.LayerMounts().Count);
        abandoned.Dispose();
        DateTime until = DateTime.UtcNow + Deadline;
        while (test.LayerMounts().Count > 1 && DateTime.UtcNow < until)
        {
            await Task.Delay(100);
        }

        Assert.Equal([mount], test.LayerMounts());
        await plugin.OkAsync("Put", new { ID = "build" });
        Assert.Empty(test.LayerMounts());
        await test.StopAndCheckAsync(daemon);
    }

    [Fact]
    public async Task Diff_changes_and_size_compare_with_no_parent_or_an_older_ancestor()
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        DaemonProcess daemon = test.StartDaemon();
        PluginClient plugin = test.Client();

        await plugin.OkAsync("Create", new { ID = "l1" });
        Assert.Null((await plugin.ApplyDiffAsync("l1", "", LayerTar.Build(LayerTar.Dir("etc"), LayerTar.File("etc/motd", "hello\n")))).Err);
        await plugin.OkAsync("Create", new { ID = "l2", Parent = "l1" });
        Assert.Null((await plugin.ApplyDiffAsync("l2", "l1", LayerTar.Build(LayerTar.File("two", "22\n")))).Err);
        await plugin.OkAsync("Create", new { ID = "l3", Parent = "l2" });
        Assert.Null((await plugin.ApplyDiffAsync("l3", "l2", LayerTar.Build(LayerTar.File("three", "333\n"), LayerTar.Whiteout("etc/motd")))).Err);

        // The direct parent: l3's own entries.
        Assert.Equal(["/etc", "/etc/motd", "/three"], await ChangesAsync(plugin, "l3", "l2"));

        // An older ancestor (docker build --squash): what l2 and l3 did together, relative to l1.
        Assert.Equal(["/etc", "/etc/motd", "/three", "/two"], await ChangesAsync(plugin, "l3", "l1"));
        (HttpStatusCode status, byte[] squashed) = await plugin.DiffAsync("l3", "l1");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["etc/", "etc/.wh.motd", "three", "two"], LayerTar.Read(squashed).Select(e => e.Name).Order(StringComparer.Ordinal));
        Assert.Equal(7, (await plugin.OkAsync("DiffSize", new { ID = "l3", Parent = "l1" })).GetProperty("Size").GetInt64());

        // No parent: the whole layer as a tar of its full content, no whiteouts (nothing below it to hide).
        Assert.Equal(["/etc", "/three", "/two"], await ChangesAsync(plugin, "l3", ""));
        (status, byte[] whole) = await plugin.DiffAsync("l3", "");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(["etc/", "three", "two"], LayerTar.Read(whole).Select(e => e.Name).Order(StringComparer.Ordinal));
        Assert.Equal(7, (await plugin.OkAsync("DiffSize", new { ID = "l3", Parent = "" })).GetProperty("Size").GetInt64());

        // A layer without changes (the classic builder's CMD step commits one) diffs to an empty tar, and both that
        // tar and no bytes at all (Go's archive/tar reads that as an empty archive) apply as an empty layer.
        await plugin.OkAsync("CreateReadWrite", new { ID = "unchanged", Parent = "l3" });
        (status, byte[] empty) = await plugin.DiffAsync("unchanged", "l3");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1024, empty.Length);
        Assert.Empty(LayerTar.Read(empty));
        await plugin.OkAsync("Create", new { ID = "cmd1", Parent = "l3" });
        Assert.Null((await plugin.ApplyDiffAsync("cmd1", "l3", empty)).Err);
        await plugin.OkAsync("Create", new { ID = "cmd2", Parent = "cmd1" });
        Assert.Null((await plugin.ApplyDiffAsync("cmd2", "cmd1", [])).Err);
        Assert.Equal(0, (await plugin.OkAsync("Changes", new { ID = "cmd2", Parent = "l3" })).GetProperty("Changes").GetArrayLength());

        Assert.Empty(test.LayerMounts());
        await test.StopAndCheckAsync(daemon);
    }

    private static async Task<List<string>> ChangesAsync(PluginClient plugin, string id, string parent) =>
        [.. (await plugin.OkAsync("Changes", new { ID = id, Parent = parent })).GetProperty("Changes").EnumerateArray()
            .Select(c => c.GetProperty("Path").GetString()!).Order(StringComparer.Ordinal)];

    private static Task<T> Within<T>(Task<T> call) => call.WaitAsync(Deadline);
}
