using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class LayerInspectCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Json_describes_one_layer_with_the_same_figures_as_ls()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw", (0, 1 << 20, 1)));
        await StoreOkAsync("layer", "clone", "base", "--id", "c1");

        JsonElement inspected = await InspectAsync("base");

        JsonElement listed = (await LsAsync()).EnumerateArray().Single(l => l.GetProperty("id").GetString() == "base");
        Assert.True(JsonElement.DeepEquals(listed, inspected), $"ls: {listed}\ninspect: {inspected}");
        Assert.Equal(JsonValueKind.Null, inspected.GetProperty("parent").ValueKind);
        Assert.Equal("sealed", inspected.GetProperty("state").GetString());
        Assert.Equal(1, inspected.GetProperty("children").GetInt32());
        Assert.Equal(Capacity, inspected.GetProperty("capacity").GetInt64());
        Assert.Equal(LayerFile("base"), inspected.GetProperty("path").GetString());
    }

    [Fact]
    public async Task Table_shows_every_field_of_the_layer()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw", (0, 4096, 1)));
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c1", "--label", "app=web");

        string table = (await StoreOkAsync("layer", "inspect", "c1")).Stdout;

        Assert.Matches(@"(?m)^\s*id\s+c1\s*$", table);
        Assert.Matches(@"(?m)^\s*parent\s+base\s*$", table);
        Assert.Matches(@"(?m)^\s*kind\s+container\s*$", table);
        Assert.Matches(@"(?m)^\s*state\s+writable\s*$", table);
        Assert.Matches(@"(?m)^\s*capacity\s+64 MiB \(67108864 bytes\)\s*$", table);
        Assert.Matches(@"(?m)^\s*labels\s+app=web\s*$", table);
        Assert.Contains(LayerFile("c1"), table, StringComparison.Ordinal);
        foreach (string field in new[] { "size", "virtual size", "children", "containers", "created" })
        {
            Assert.Matches($@"(?m)^\s*{field}\s+\S", table);
        }
    }

    [Fact]
    public async Task Unknown_or_invalid_id_is_refused()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M");

        AssertError(await StoreAsync("layer", "inspect", "nope"), 1, $"no layer nope in {Root}.");
        AssertError(await StoreAsync("layer", "inspect", "../base", "--json"), 1, $"no layer ../base in {Root}.");
    }
}
