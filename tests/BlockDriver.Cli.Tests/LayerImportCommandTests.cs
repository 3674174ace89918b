using System.Text.Json;
using BlockDriver.Cli.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class LayerImportCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Raw_file_becomes_a_writable_image_layer_with_the_same_bytes()
    {
        string raw = WriteRaw("base.raw", (0, 4096, 1), (3 * MiB, 1 << 20, 2), (Capacity - 512, 512, 3));

        await ImportAsync(raw, "base");

        JsonElement layer = await InspectAsync("base");
        Assert.Equal(JsonValueKind.Null, layer.GetProperty("parent").ValueKind);
        Assert.Equal("image", layer.GetProperty("kind").GetString());
        Assert.Equal("writable", layer.GetProperty("state").GetString());
        Assert.Equal(Capacity, layer.GetProperty("capacity").GetInt64());
        Assert.InRange(layer.GetProperty("size").GetInt64(), (1 << 20) + 4096, 8 * MiB);
        await AssertContentAsync("base", raw);
    }

    [Fact]
    public async Task Vhdx_file_is_imported_by_content()
    {
        string raw = WriteRaw("disk.raw", (2 * MiB, 65536, 4));
        Assert.Equal(0, (await QemuImg.RunAsync(Temp.FullName, "convert", "-f", "raw", "-O", "vhdx", "disk.raw", "disk.vhdx")).ExitCode);

        await ImportAsync(PathOf("disk.vhdx"), "fromvhdx");

        await AssertContentAsync("fromvhdx", raw);
    }

    [Fact]
    public async Task Import_over_a_parent_stores_only_what_differs()
    {
        string baseRaw = WriteRaw("base.raw", (0, 8 << 20, 1));
        await SealedBaseAsync("base", baseRaw);
        string changed = ModifyRaw(baseRaw, "changed.raw", (MiB, 65536, 2), (40 * MiB, 4096, 3));

        await ImportAsync(changed, "child", parent: "base");

        JsonElement child = await InspectAsync("child");
        long baseSize = (await InspectAsync("base")).GetProperty("size").GetInt64();
        Assert.Equal("base", child.GetProperty("parent").GetString());
        Assert.Equal("container", child.GetProperty("kind").GetString());
        Assert.True(child.GetProperty("size").GetInt64() < baseSize / 4, $"child holds {child.GetProperty("size")} bytes, base {baseSize}");
        Assert.Equal(baseSize + child.GetProperty("size").GetInt64(), child.GetProperty("virtualSize").GetInt64());
        await AssertContentAsync("child", changed);
        await AssertContentAsync("base", baseRaw);
    }

    [Fact]
    public async Task File_of_another_size_than_the_parent_is_refused()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw"));
        TestImages.WriteRaw(PathOf("small.raw"), 32 * MiB);

        AssertError(await StoreAsync("layer", "import", PathOf("small.raw"), "--parent", "base", "--id", "child"), 1,
            "is 33554432 bytes but the layer would be 67108864");

        Assert.Equal(["base"], await IdsAsync());
        Assert.Equal([LayerFile("base")], Directory.GetFiles(Path.Combine(Root, "layers"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Missing_file_is_refused()
    {
        AssertError(await StoreAsync("layer", "import", "missing.raw", "--id", "x"), 1, "missing.raw: no such file.");
    }
}
