using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class LayerFlattenCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Flatten_makes_a_standalone_base_with_the_same_content_and_its_children_stay_valid()
    {
        string baseRaw = WriteRaw("base.raw", (0, 2 << 20, 1));
        await SealedBaseAsync("base", baseRaw);
        string midRaw = ModifyRaw(baseRaw, "mid.raw", (MiB, 65536, 2), (12 * MiB, 4096, 3));
        await ImportAsync(midRaw, "mid", parent: "base", seal: true);
        string topRaw = ModifyRaw(midRaw, "top.raw", (30 * MiB, 4096, 4));
        await ImportAsync(topRaw, "top", parent: "mid");

        Assert.Equal("mid", (await StoreOkAsync("layer", "flatten", "mid")).Stdout.Trim());

        JsonElement mid = await InspectAsync("mid");
        Assert.Equal(JsonValueKind.Null, mid.GetProperty("parent").ValueKind);
        Assert.Equal("sealed", mid.GetProperty("state").GetString());
        Assert.Equal(0, (await InspectAsync("base")).GetProperty("children").GetInt32());
        await AssertContentAsync("mid", midRaw);
        await AssertContentAsync("top", topRaw);

        // Nothing reads base any more: it can go, and the chain above it still reads the same.
        await StoreOkAsync("layer", "rm", "base");
        await AssertContentAsync("top", topRaw);
    }

    [Fact]
    public async Task Flatten_of_a_base_layer_is_refused()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M");

        AssertError(await StoreAsync("layer", "flatten", "base"), 1, "layer base is already a base layer.");
        AssertError(await StoreAsync("layer", "flatten", "nope"), 1, $"no layer nope in {Root}.");
    }
}
