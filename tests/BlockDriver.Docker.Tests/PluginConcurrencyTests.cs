using System.Net;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>dockerd calls the plugin concurrently (parallel pulls, many containers): racing calls give the results
/// of some order of them, and nothing leaks.</summary>
[Collection(DockerTestCollection.Name)]
public sealed class PluginConcurrencyTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Racing_creates_gets_and_removes_give_sane_results()
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        DaemonProcess daemon = test.StartDaemon();
        PluginClient plugin = test.Client();

        // Parentless creates racing for the base file system layer that does not exist yet, and two for one id.
        PluginReply[] creates = await Task.WhenAll(
            plugin.CallAsync("Create", new { ID = "a" }),
            plugin.CallAsync("Create", new { ID = "b" }),
            plugin.CallAsync("CreateReadWrite", new { ID = "dup" }),
            plugin.CallAsync("CreateReadWrite", new { ID = "dup" }));
        Assert.All(creates.Take(2), r => Assert.Null(r.Err));
        Assert.Single(creates.Skip(2), r => r.Err is null);
        Assert.Contains("layer dup already exists", creates.Skip(2).Single(r => r.Err is not null).Err, StringComparison.Ordinal);

        // Children of one writable parent created at once: it is sealed once, both children exist.
        PluginReply[] children = await Task.WhenAll(
            plugin.CallAsync("CreateReadWrite", new { ID = "child1", Parent = "dup" }),
            plugin.CallAsync("CreateReadWrite", new { ID = "child2", Parent = "dup" }));
        Assert.All(children, r => Assert.True(r.Err is null, r.Body));

        // Eight Gets at once: one mount, eight references.
        PluginReply[] gets = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => plugin.CallAsync("Get", new { ID = "child1" })));
        Assert.All(gets, r => Assert.Equal(Path.Combine(test.Root, "mnt", "child1"), r.Json.GetProperty("Dir").GetString()));
        PluginReply[] puts = await Task.WhenAll(Enumerable.Range(0, 7).Select(_ => plugin.CallAsync("Put", new { ID = "child1" })));
        Assert.All(puts, r => Assert.Null(r.Err));
        Assert.Single(test.LayerMounts());
        await plugin.OkAsync("Put", new { ID = "child1" });
        Assert.Empty(test.LayerMounts());

        // Get racing Remove: either the Get came first (and Remove unmounted it) or Remove did (and Get found
        // nothing); either way the layer is gone and nothing stays mounted.
        for (int round = 0; round < 4; round++)
        {
            string id = $"race{round}";
            await plugin.OkAsync("CreateReadWrite", new { ID = id, Parent = "a" });
            PluginReply[] raced = await Task.WhenAll(plugin.CallAsync("Get", new { ID = id }), plugin.CallAsync("Remove", new { ID = id }));
            (PluginReply get, PluginReply remove) = (raced[0], raced[1]);
            Assert.True(remove.Err is null, remove.Body);
            Assert.True(get.Err is null || get.Err.Contains($"layer {id} does not exist", StringComparison.Ordinal), get.Body);
            Assert.False((await plugin.OkAsync("Exists", new { ID = id })).GetProperty("Exists").GetBoolean());
            Assert.Empty(test.LayerMounts());
        }

        // Changes of two layers over one parent at once (each mounts the shared parent for the comparison).
        await plugin.OkAsync("Get", new { ID = "child1" });
        await plugin.OkAsync("Get", new { ID = "child2" });
        PluginReply[] changes = await Task.WhenAll(
            plugin.CallAsync("Changes", new { ID = "child1", Parent = "dup" }),
            plugin.CallAsync("Changes", new { ID = "child2", Parent = "dup" }),
            plugin.CallAsync("DiffSize", new { ID = "child1", Parent = "dup" }),
            plugin.CallAsync("DiffSize", new { ID = "child2", Parent = "dup" }));
        Assert.All(changes, r => Assert.True(r.Status == HttpStatusCode.OK && r.Err is null, r.Body));
        await plugin.OkAsync("Put", new { ID = "child1" });
        await plugin.OkAsync("Put", new { ID = "child2" });
        Assert.Empty(test.LayerMounts());
        Assert.Empty(Directory.EnumerateDirectories(Path.Combine(test.Root, "mnt"), ".tmp-*"));
        await test.StopAndCheckAsync(daemon);
    }
}
