using System.Net;
using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>Bad requests get a clear error in Err (HTTP 500, or 400/404/405 for what is not a graphdriver call),
/// change nothing, and leave the plugin serving.</summary>
[Collection(DockerTestCollection.Name)]
public sealed class PluginErrorTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Bad_requests_fail_clearly_and_change_nothing()
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        DaemonProcess daemon = test.StartDaemon();
        PluginClient plugin = test.Client();

        // Unknown ids.
        Assert.Contains("layer nope does not exist", await plugin.FailAsync("Get", new { ID = "nope" }), StringComparison.Ordinal);
        Assert.Contains("layer nope does not exist", await plugin.FailAsync("Remove", new { ID = "nope" }), StringComparison.Ordinal);
        Assert.Contains("layer nope does not exist", await plugin.FailAsync("Put", new { ID = "nope" }), StringComparison.Ordinal);
        Assert.Contains("layer nope does not exist", await plugin.FailAsync("GetMetadata", new { ID = "nope" }), StringComparison.Ordinal);
        Assert.Contains("layer nope does not exist", await plugin.FailAsync("Changes", new { ID = "nope" }), StringComparison.Ordinal);
        Assert.False((await plugin.OkAsync("Exists", new { ID = "nope" })).GetProperty("Exists").GetBoolean());
        Assert.Contains("not a valid layer id", await plugin.FailAsync("Get", new { ID = "../etc" }), StringComparison.Ordinal);
        Assert.False((await plugin.OkAsync("Exists", new { ID = "../etc" })).GetProperty("Exists").GetBoolean());
        Assert.Contains("names no layer", await plugin.FailAsync("Create", new { }), StringComparison.Ordinal);

        // Not graphdriver requests: malformed JSON, JSON of the wrong shape, an unknown method, GET.
        PluginReply badJson = await plugin.CallAsync("Create", "{\"ID\": ");
        Assert.Equal(HttpStatusCode.BadRequest, badJson.Status);
        Assert.StartsWith("malformed request", badJson.Err, StringComparison.Ordinal);
        PluginReply wrongShape = await plugin.CallAsync("Create", "[1, 2]");
        Assert.Equal(HttpStatusCode.BadRequest, wrongShape.Status);
        Assert.StartsWith("malformed request", wrongShape.Err, StringComparison.Ordinal);
        PluginReply unknown = await plugin.CallAsync("Frobnicate", new { });
        Assert.Equal(HttpStatusCode.NotFound, unknown.Status);
        Assert.Contains("no such method: /GraphDriver.Frobnicate", unknown.Err, StringComparison.Ordinal);
        PluginReply get = await plugin.SendAsync(HttpMethod.Get, "/GraphDriver.Status");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, get.Status);
        Assert.Contains("POST only", get.Err, StringComparison.Ordinal);

        // Init with what the plugin cannot honour.
        Assert.Contains("storage options", await plugin.FailAsync("Init", new { Home = "/x", Opts = new[] { "dm.basesize=20G" } }), StringComparison.Ordinal);
        Assert.Contains("user namespace", await plugin.FailAsync("Init", new { Home = "/x", UIDMaps = new[] { new Dictionary<string, long> { ["container_id"] = 0, ["host_id"] = 100000, ["size"] = 65536 } } }), StringComparison.Ordinal);

        // Create with an unknown parent, or an id taken.
        Assert.Contains("parent layer missing does not exist", await plugin.FailAsync("Create", new { ID = "l2", Parent = "missing" }), StringComparison.Ordinal);
        Assert.False((await plugin.OkAsync("Exists", new { ID = "l2" })).GetProperty("Exists").GetBoolean());
        await plugin.OkAsync("Create", new { ID = "l1" });
        Assert.Contains("layer l1 already exists", await plugin.FailAsync("Create", new { ID = "l1" }), StringComparison.Ordinal);

        // A hostile tar: refused after its first entries went in, nothing written outside, and the layer is as Create
        // made it (empty and writable), so a retry applies onto nothing stale.
        byte[] hostile = LayerTar.Build(LayerTar.Dir("etc"), LayerTar.File("etc/early", "in\n"), LayerTar.File("../escape", "out\n"));
        PluginReply refused = await plugin.ApplyDiffAsync("l1", "", hostile);
        Assert.Equal(HttpStatusCode.InternalServerError, refused.Status);
        Assert.Contains("layer tar", refused.Err, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(test.Root, "mnt", "escape")));
        Assert.False(File.Exists(test.Dir("escape")));
        Assert.Equal("writable", await StateAsync(plugin, "l1"));
        Assert.Equal(0, (await plugin.OkAsync("Changes", new { ID = "l1" })).GetProperty("Changes").GetArrayLength());
        Assert.Empty(test.LayerMounts());

        // ApplyDiff: a wrong parent, then a good tar, then again to the sealed layer.
        byte[] tar = LayerTar.Build(LayerTar.Dir("etc"), LayerTar.File("etc/motd", "hello\n"));
        PluginReply wrongParent = await plugin.ApplyDiffAsync("l1", "other", tar);
        Assert.Contains("layer l1's parent is none (the base file system), not other", wrongParent.Err, StringComparison.Ordinal);
        PluginReply applied = await plugin.ApplyDiffAsync("l1", "", tar);
        Assert.True(applied.Err is null, applied.Body);
        PluginReply again = await plugin.ApplyDiffAsync("l1", "", tar);
        Assert.Equal(HttpStatusCode.InternalServerError, again.Status);
        Assert.Contains("layer l1 is sealed", again.Err, StringComparison.Ordinal);

        // Sizes: smaller and larger than the parent are refused, unknown storage options too; equal works.
        Assert.Contains("smaller than the parent layer l1's virtual size",
            await plugin.FailAsync("CreateReadWrite", new { ID = "c1", Parent = "l1", StorageOpt = new Dictionary<string, string> { ["size"] = "64M" } }), StringComparison.Ordinal);
        Assert.Contains("not supported",
            await plugin.FailAsync("CreateReadWrite", new { ID = "c1", Parent = "l1", StorageOpt = new Dictionary<string, string> { ["size"] = "1G" } }), StringComparison.Ordinal);
        Assert.Contains("storage option \"quota\" is not supported",
            await plugin.FailAsync("CreateReadWrite", new { ID = "c1", Parent = "l1", StorageOpt = new Dictionary<string, string> { ["quota"] = "1" } }), StringComparison.Ordinal);
        Assert.Contains("is not a size",
            await plugin.FailAsync("CreateReadWrite", new { ID = "c1", Parent = "l1", StorageOpt = new Dictionary<string, string> { ["size"] = "lots" } }), StringComparison.Ordinal);
        Assert.False((await plugin.OkAsync("Exists", new { ID = "c1" })).GetProperty("Exists").GetBoolean());
        await plugin.OkAsync("CreateReadWrite", new { ID = "c1", Parent = "l1", StorageOpt = new Dictionary<string, string> { ["size"] = "256MB" } });

        // Remove of a layer with children.
        Assert.Contains("layer l1 has 1 child layer(s) (c1): remove them first", await plugin.FailAsync("Remove", new { ID = "l1" }), StringComparison.Ordinal);
        Assert.True((await plugin.OkAsync("Exists", new { ID = "l1" })).GetProperty("Exists").GetBoolean());

        // A child of a writable layer that is mounted is refused; the layer stays writable and mounted.
        await plugin.OkAsync("Get", new { ID = "c1" });
        Assert.Contains("parent layer c1 is writable and mounted",
            await plugin.FailAsync("CreateReadWrite", new { ID = "c2", Parent = "c1" }), StringComparison.Ordinal);
        Assert.Equal("writable", await StateAsync(plugin, "c1"));

        // Diff/Changes/DiffSize compare with what dockerd names: an unknown layer or one outside the chain is refused,
        // and Diff says so before streaming; no parent is the whole layer.
        Assert.Contains("parent layer l0 does not exist", await plugin.FailAsync("Changes", new { ID = "c1", Parent = "l0" }), StringComparison.Ordinal);
        await plugin.OkAsync("Create", new { ID = "u1" });
        Assert.Contains("layer u1 is not an ancestor of layer c1", await plugin.FailAsync("DiffSize", new { ID = "c1", Parent = "u1" }), StringComparison.Ordinal);
        (HttpStatusCode diffStatus, byte[] diffBody) = await plugin.DiffAsync("c1", "u1");
        Assert.Equal(HttpStatusCode.InternalServerError, diffStatus);
        Assert.Contains("layer u1 is not an ancestor of layer c1", JsonDocument.Parse(diffBody).RootElement.GetProperty("Err").GetString(), StringComparison.Ordinal);
        (HttpStatusCode unknownDiff, _) = await plugin.DiffAsync("nope", "");
        Assert.Equal(HttpStatusCode.InternalServerError, unknownDiff);
        Assert.Contains("/etc/motd", (await plugin.OkAsync("Changes", new { ID = "c1" })).GetProperty("Changes").EnumerateArray().Select(c => c.GetProperty("Path").GetString()));
        Assert.Equal(0, (await plugin.OkAsync("Changes", new { ID = "c1", Parent = "l1" })).GetProperty("Changes").GetArrayLength());

        // ApplyDiff to a mounted writable layer is refused.
        await plugin.OkAsync("Create", new { ID = "l3", Parent = "l1" });
        await plugin.OkAsync("Get", new { ID = "l3" });
        PluginReply mounted = await plugin.ApplyDiffAsync("l3", "l1", tar);
        Assert.Contains("layer l3 is mounted", mounted.Err, StringComparison.Ordinal);
        await plugin.OkAsync("Put", new { ID = "l3" });

        // The plugin still serves after all that, and a Put without a Get is refused.
        Assert.Contains("a Put without a matching Get", await plugin.FailAsync("Put", new { ID = "l3" }), StringComparison.Ordinal);
        await plugin.OkAsync("Put", new { ID = "c1" });
        Assert.Empty(test.LayerMounts());
        Assert.Contains("Docker /GraphDriver.Remove l1 failed (500)", daemon.AllOutput, StringComparison.Ordinal);
        await test.StopAndCheckAsync(daemon);
    }

    private static async Task<string?> StateAsync(PluginClient plugin, string id) =>
        (await plugin.OkAsync("GetMetadata", new { ID = id })).GetProperty("Metadata").GetProperty("State").GetString();
}
