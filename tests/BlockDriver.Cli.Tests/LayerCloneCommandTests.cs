using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class LayerCloneCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Clone_is_a_writable_container_child_with_the_same_content()
    {
        string raw = WriteRaw("base.raw", (MiB, 1 << 20, 1));
        await SealedBaseAsync("base", raw);

        Assert.Equal("copy", (await StoreOkAsync("layer", "clone", "base", "--id", "copy")).Stdout.Trim());
        string generated = (await StoreOkAsync("layer", "clone", "base")).Stdout.Trim();

        Assert.Matches("^[0-9a-f]{32}$", generated);
        JsonElement clone = await InspectAsync("copy");
        Assert.Equal("base", clone.GetProperty("parent").GetString());
        Assert.Equal("container", clone.GetProperty("kind").GetString());
        Assert.Equal("writable", clone.GetProperty("state").GetString());
        Assert.Equal(2, (await InspectAsync("base")).GetProperty("children").GetInt32());
        await AssertContentAsync("copy", raw);
    }

    [Fact]
    public async Task Clone_of_a_writable_layer_is_refused()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "w", "--size", "64M");

        AssertError(await StoreAsync("layer", "clone", "w", "--id", "copy"), 1, "layer w is writable; only sealed layers can be parents");
        AssertError(await StoreAsync("layer", "clone", "nope"), 1, $"no layer nope in {Root}.");

        Assert.Equal(["w"], await IdsAsync());
    }
}
