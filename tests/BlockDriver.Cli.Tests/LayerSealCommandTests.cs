using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class LayerSealCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Sealed_layer_keeps_its_content_and_its_file_becomes_read_only()
    {
        string raw = WriteRaw("base.raw", (MiB, 65536, 1));
        await ImportAsync(raw, "base");

        Assert.Equal("base", (await StoreOkAsync("layer", "seal", "base")).Stdout.Trim());

        JsonElement layer = await InspectAsync("base");
        Assert.Equal("sealed", layer.GetProperty("state").GetString());
        Assert.Equal("image", layer.GetProperty("kind").GetString());
        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(LayerFile("base")));
        await AssertContentAsync("base", raw);
    }

    [Fact]
    public async Task Seal_as_renames_the_layer_and_its_file()
    {
        string raw = WriteRaw("base.raw", (MiB, 65536, 1));
        await ImportAsync(raw, "work");

        Assert.Equal("v1", (await StoreOkAsync("layer", "seal", "work", "--as", "v1")).Stdout.Trim());

        Assert.Equal(["v1"], await IdsAsync());
        Assert.Equal(LayerFile("v1"), (await InspectAsync("v1")).GetProperty("path").GetString());
        await AssertNoLayerAsync("work");
        await AssertContentAsync("v1", raw);
    }

    [Fact]
    public async Task Sealing_twice_or_an_unknown_id_is_refused()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M");
        await StoreOkAsync("layer", "seal", "base");

        AssertError(await StoreAsync("layer", "seal", "base"), 1, "layer base is already sealed.");
        AssertError(await StoreAsync("layer", "seal", "nope"), 1, $"no layer nope in {Root}.");
    }

    [Fact]
    public async Task Seal_as_an_existing_id_is_refused_and_nothing_changes()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "a", "--size", "64M");
        await StoreOkAsync("layer", "create", "--blank", "--id", "b", "--size", "64M");

        AssertError(await StoreAsync("layer", "seal", "a", "--as", "b"), 1, "layer b already exists.");
        AssertError(await StoreAsync("layer", "seal", "a", "--as", "../b"), 1, "\"../b\" is not a valid layer id");

        JsonElement layers = await LsAsync();
        Assert.All(layers.EnumerateArray(), l => Assert.Equal("writable", l.GetProperty("state").GetString()));
        Assert.True(File.Exists(LayerFile("a")));
    }
}
