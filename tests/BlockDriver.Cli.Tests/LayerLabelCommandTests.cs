using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class LayerLabelCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Labels_of_a_sealed_layer_are_added_replaced_and_removed()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M", "--label", "a=1", "--label", "b=2");
        await StoreOkAsync("layer", "seal", "base");

        await StoreOkAsync("layer", "label", "base", "a=10", "c=x=y", "--rm", "b");

        JsonElement labels = (await InspectAsync("base")).GetProperty("labels");
        Assert.Equal(["a", "c"], labels.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        Assert.Equal("10", labels.GetProperty("a").GetString());
        Assert.Equal("x=y", labels.GetProperty("c").GetString());
    }

    [Fact]
    public async Task Malformed_label_or_unknown_id_is_refused_and_nothing_changes()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M", "--label", "a=1");

        AssertError(await StoreAsync("layer", "label", "base", "b=2", "novalue"), 1, "label \"novalue\" is not KEY=VALUE.");
        AssertError(await StoreAsync("layer", "label", "base", "=v"), 1, "label \"=v\" is not KEY=VALUE.");
        AssertError(await StoreAsync("layer", "label", "nope", "a=2"), 1, $"no layer nope in {Root}.");

        JsonElement labels = (await InspectAsync("base")).GetProperty("labels");
        Assert.Equal("a", Assert.Single(labels.EnumerateObject()).Name);
        Assert.Equal("1", labels.GetProperty("a").GetString());
    }
}
