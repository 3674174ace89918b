using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class LayerCreateCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Base_layer_is_a_blank_writable_image_of_the_requested_capacity()
    {
        ProcessResult result = await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M");

        Assert.Equal("base", result.Stdout.Trim());
        JsonElement layer = await InspectAsync("base");
        Assert.Equal(JsonValueKind.Null, layer.GetProperty("parent").ValueKind);
        Assert.Equal("image", layer.GetProperty("kind").GetString());
        Assert.Equal("writable", layer.GetProperty("state").GetString());
        Assert.Equal(Capacity, layer.GetProperty("capacity").GetInt64());
        Assert.Equal(LayerFile("base"), layer.GetProperty("path").GetString());
        Assert.True(File.Exists(LayerFile("base")));
        await AssertContentAsync("base", WriteRaw("zeroes.raw"));
    }

    [Fact]
    public async Task Child_of_a_sealed_layer_is_a_container_with_a_generated_id_and_the_parents_capacity()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw", (MiB, 65536, 1)));

        string id = (await StoreOkAsync("layer", "create", "--parent", "base")).Stdout.Trim();

        Assert.Matches("^[0-9a-f]{32}$", id);
        JsonElement child = await InspectAsync(id);
        Assert.Equal("base", child.GetProperty("parent").GetString());
        Assert.Equal("container", child.GetProperty("kind").GetString());
        Assert.Equal("writable", child.GetProperty("state").GetString());
        Assert.Equal(Capacity, child.GetProperty("capacity").GetInt64());
        Assert.Equal(1, (await InspectAsync("base")).GetProperty("children").GetInt32());
        await AssertContentAsync(id, PathOf("base.raw"));
    }

    [Fact]
    public async Task Kind_and_labels_are_recorded_and_a_snapshot_stays_one_when_sealed()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "s", "--size", "64M", "--kind", "snapshot", "--label", "app=web", "--label", "expr=a=b");

        JsonElement layer = await InspectAsync("s");
        Assert.Equal("snapshot", layer.GetProperty("kind").GetString());
        Assert.Equal("web", layer.GetProperty("labels").GetProperty("app").GetString());
        Assert.Equal("a=b", layer.GetProperty("labels").GetProperty("expr").GetString());
        await StoreOkAsync("layer", "seal", "s");
        Assert.Equal("snapshot", (await InspectAsync("s")).GetProperty("kind").GetString());
    }

    [Fact]
    public async Task Child_of_a_writable_layer_is_refused_and_nothing_is_created()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M");

        AssertError(await StoreAsync("layer", "create", "--parent", "base", "--id", "child"), 1,
            "layer base is writable; only sealed layers can be parents");

        Assert.Equal(["base"], await IdsAsync());
        Assert.Equal(["base.vhdx"], Directory.GetFiles(Path.Combine(Root, "layers")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task Duplicate_id_is_refused_and_the_existing_layer_is_kept()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M", "--label", "first=yes");

        AssertError(await StoreAsync("layer", "create", "--blank", "--id", "base", "--size", "128M"), 1, "layer base already exists.");

        JsonElement layer = await InspectAsync("base");
        Assert.Equal(Capacity, layer.GetProperty("capacity").GetInt64());
        Assert.Equal("yes", layer.GetProperty("labels").GetProperty("first").GetString());
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("a/b")]
    [InlineData(".hidden")]
    public async Task Invalid_id_is_refused_and_no_file_is_written(string id)
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M");

        AssertError(await StoreAsync("layer", "create", "--blank", "--id", id, "--size", "64M"), 1, $"\"{id}\" is not a valid layer id");

        Assert.Equal(["base"], await IdsAsync());
        Assert.Equal([LayerFile("base")], Directory.GetFiles(Temp.FullName, "*.vhdx", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetDirectories(Path.Combine(Root, "layers")));
    }

    [Fact]
    public async Task Unknown_parent_is_refused()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M");

        AssertError(await StoreAsync("layer", "create", "--parent", "nope"), 1, $"no layer nope in {Root}.");

        Assert.Equal(["base"], await IdsAsync());
    }

    [Theory]
    [InlineData("12Q", "invalid size '12Q': expected a number of bytes")]
    [InlineData("abc", "invalid size 'abc': expected a number of bytes")]
    [InlineData("0", "invalid size '0': must be positive.")]
    [InlineData("99999999P", "invalid size '99999999P': too large.")]
    [InlineData("1000", "capacity 1000 must be a positive multiple of 512 bytes.")]
    public async Task Invalid_size_is_a_one_line_error(string size, string message)
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M");

        AssertError(await StoreAsync("layer", "create", "--blank", "--id", "bad", "--size", size), 1, message);

        Assert.Equal(["base"], await IdsAsync());
    }

    [Fact]
    public async Task Child_with_a_size_other_than_its_parents_is_refused()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw"));

        AssertError(await StoreAsync("layer", "create", "--parent", "base", "--size", "32M"), 1,
            "a child of base has its capacity, 67108864 bytes; 33554432 was asked for.");
    }
}
