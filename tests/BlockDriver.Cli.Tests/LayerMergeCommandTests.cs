using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class LayerMergeCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Merge_folds_the_parent_into_the_layer_which_keeps_its_id_and_content()
    {
        string baseRaw = WriteRaw("base.raw", (0, 2 << 20, 1));
        await SealedBaseAsync("base", baseRaw);
        string midRaw = ModifyRaw(baseRaw, "mid.raw", (MiB, 65536, 2), (10 * MiB, 1 << 20, 3));
        await ImportAsync(midRaw, "mid", parent: "base", seal: true);
        string topRaw = ModifyRaw(midRaw, "top.raw", (10 * MiB, 4096, 4), (30 * MiB, 4096, 5));
        await ImportAsync(topRaw, "top", parent: "mid");

        Assert.Equal("top", (await StoreOkAsync("layer", "merge", "top")).Stdout.Trim());

        JsonElement top = await InspectAsync("top");
        Assert.Equal("base", top.GetProperty("parent").GetString());
        Assert.Equal("writable", top.GetProperty("state").GetString());
        Assert.Equal(["base", "top"], await IdsAsync());
        await AssertNoLayerAsync("mid");
        await AssertContentAsync("top", topRaw);
        await AssertContentAsync("base", baseRaw);
    }

    [Fact]
    public async Task Merge_into_a_base_parent_makes_a_base()
    {
        string baseRaw = WriteRaw("base.raw", (0, 65536, 1));
        await SealedBaseAsync("base", baseRaw);
        string childRaw = ModifyRaw(baseRaw, "child.raw", (2 * MiB, 4096, 2));
        await ImportAsync(childRaw, "child", parent: "base");

        await StoreOkAsync("layer", "merge", "child");

        Assert.Equal(JsonValueKind.Null, (await InspectAsync("child")).GetProperty("parent").ValueKind);
        await AssertNoLayerAsync("base");
        await AssertContentAsync("child", childRaw);
    }

    [Fact]
    public async Task Merge_of_a_base_layer_is_refused()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M");

        AssertError(await StoreAsync("layer", "merge", "base"), 1, "layer base is a base layer; it has no parent to merge.");
        AssertError(await StoreAsync("layer", "merge", "nope"), 1, $"no layer nope in {Root}.");
    }

    [Fact]
    public async Task Merge_when_the_parent_has_other_children_is_refused_and_names_them()
    {
        string baseRaw = WriteRaw("base.raw", (0, 65536, 1));
        await SealedBaseAsync("base", baseRaw);
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c1");
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c2");
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c3");

        AssertError(await StoreAsync("layer", "merge", "c1"), 1, "layer base has other children (c2, c3); it can only be merged into its one child.");

        Assert.Equal(["base", "c1", "c2", "c3"], await IdsAsync());
        await AssertContentAsync("c2", baseRaw);
    }

    [Fact]
    public async Task Merge_while_the_parent_is_in_use_is_refused_naming_the_pid()
    {
        string baseRaw = WriteRaw("base.raw", (0, 65536, 1));
        await SealedBaseAsync("base", baseRaw);
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c1");

        using (LayerLockHolder holder = await HoldLayerLockAsync("base"))
        {
            AssertError(await StoreAsync("layer", "merge", "c1"), 1, $"layer base is in use by pid {holder.Pid}");
        }

        Assert.Equal(["base", "c1"], await IdsAsync());
        Assert.Equal("base", (await InspectAsync("c1")).GetProperty("parent").GetString());
    }
}
