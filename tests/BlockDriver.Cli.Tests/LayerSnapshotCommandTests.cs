using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class LayerSnapshotCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Snapshot_freezes_the_content_and_the_layer_continues_as_its_empty_child()
    {
        string baseRaw = WriteRaw("base.raw", (0, 2 << 20, 1));
        await SealedBaseAsync("base", baseRaw);
        string changed = ModifyRaw(baseRaw, "changed.raw", (5 * MiB, 1 << 20, 2));
        await ImportAsync(changed, "c1", parent: "base");
        long written = (await InspectAsync("c1")).GetProperty("size").GetInt64();

        Assert.Equal("c1.1", (await StoreOkAsync("layer", "snapshot", "c1", "--id", "c1.1")).Stdout.Trim());

        JsonElement snapshot = await InspectAsync("c1.1");
        JsonElement layer = await InspectAsync("c1");
        Assert.Equal("base", snapshot.GetProperty("parent").GetString());
        Assert.Equal("snapshot", snapshot.GetProperty("kind").GetString());
        Assert.Equal("sealed", snapshot.GetProperty("state").GetString());
        Assert.Equal(written, snapshot.GetProperty("size").GetInt64());
        Assert.Equal("c1.1", layer.GetProperty("parent").GetString());
        Assert.Equal("writable", layer.GetProperty("state").GetString());
        Assert.True(layer.GetProperty("size").GetInt64() < written, $"c1 holds {layer.GetProperty("size")} bytes after the snapshot");
        Assert.Equal(["base", "c1", "c1.1"], (await IdsAsync()).Order(StringComparer.Ordinal));
        await AssertContentAsync("c1", changed);
        await AssertContentAsync("c1.1", changed);
    }

    [Fact]
    public async Task Snapshot_without_an_id_prints_the_generated_one()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "w", "--size", "64M");

        string id = (await StoreOkAsync("layer", "snapshot", "w")).Stdout.Trim();

        Assert.Matches("^[0-9a-f]{32}$", id);
        Assert.Equal(id, (await InspectAsync("w")).GetProperty("parent").GetString());
    }

    [Fact]
    public async Task Snapshot_of_a_sealed_or_unknown_layer_or_under_a_taken_id_is_refused()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw"));
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c1");

        AssertError(await StoreAsync("layer", "snapshot", "base", "--id", "s"), 1, "layer base is sealed; only a writable layer can be snapshotted.");
        AssertError(await StoreAsync("layer", "snapshot", "c1", "--id", "base"), 1, "layer base already exists.");
        AssertError(await StoreAsync("layer", "snapshot", "c1", "--id", "../s"), 1, "\"../s\" is not a valid layer id");
        AssertError(await StoreAsync("layer", "snapshot", "nope"), 1, $"no layer nope in {Root}.");

        Assert.Equal(["base", "c1"], await IdsAsync());
        Assert.Equal("base", (await InspectAsync("c1")).GetProperty("parent").GetString());
    }
}
