using System.Globalization;
using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class DfCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Json_splits_the_layer_bytes_into_shared_exclusive_and_unused()
    {
        // base is read by two containers (shared); image2 by none (unused); c1 and c2 hold their own data.
        string baseRaw = WriteRaw("base.raw", (0, 4 << 20, 1));
        await SealedBaseAsync("base", baseRaw);
        await ImportAsync(ModifyRaw(baseRaw, "c1.raw", (8 * MiB, 1 << 20, 2)), "c1", parent: "base");
        await ImportAsync(ModifyRaw(baseRaw, "c2.raw", (16 * MiB, 65536, 3)), "c2", parent: "base");
        await SealedBaseAsync("image2", WriteRaw("image2.raw", (0, 2 << 20, 4)));
        Dictionary<string, long> size = (await LsAsync()).EnumerateArray()
            .ToDictionary(l => l.GetProperty("id").GetString()!, l => l.GetProperty("size").GetInt64());

        JsonElement df = ParseJson((await StoreOkAsync("df", "--json")).Stdout);

        Assert.Equal(["root", "allocated", "layerBytes", "shared", "exclusive", "unused", "overcommit", "images", "containers"],
            df.EnumerateObject().Select(p => p.Name));
        Assert.Equal(Root, df.GetProperty("root").GetString());
        long allocated = df.GetProperty("allocated").GetInt64();
        Assert.Equal(size.Values.Sum(), df.GetProperty("layerBytes").GetInt64());
        Assert.InRange(allocated, size.Values.Sum(), size.Values.Sum() + (16 * MiB));
        Assert.Equal(size["base"], df.GetProperty("shared").GetInt64());
        Assert.Equal(size["c1"] + size["c2"], df.GetProperty("exclusive").GetInt64());
        Assert.Equal(size["image2"], df.GetProperty("unused").GetInt64());
        Assert.Equal(Math.Round(2.0 * Capacity / allocated, 3), df.GetProperty("overcommit").GetDouble(), 3);
        Assert.Equal(["base", "image2"], df.GetProperty("images").EnumerateArray().Select(l => l.GetProperty("id").GetString()));
        JsonElement[] containers = [.. df.GetProperty("containers").EnumerateArray()];
        Assert.Equal(["c1", "c2"], containers.Select(c => c.GetProperty("id").GetString()));
        Assert.All(containers, c =>
        {
            string id = c.GetProperty("id").GetString()!;
            Assert.Equal("base", c.GetProperty("parent").GetString());
            Assert.Equal(size[id], c.GetProperty("size").GetInt64());
            Assert.Equal(size[id], c.GetProperty("exclusive").GetInt64());
            Assert.Equal(size["base"], c.GetProperty("shared").GetInt64());
            Assert.Equal(size[id] + size["base"], c.GetProperty("virtualSize").GetInt64());
            Assert.Equal(Capacity, c.GetProperty("capacity").GetInt64());
        });
    }

    [Fact]
    public async Task An_image_without_containers_is_unused_and_one_read_by_one_container_is_exclusive_to_it()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw", (0, 2 << 20, 1)));
        JsonElement alone = ParseJson((await StoreOkAsync("df", "--json")).Stdout);
        Assert.Equal(0, alone.GetProperty("overcommit").GetDouble());
        Assert.Empty(alone.GetProperty("containers").EnumerateArray());
        Assert.Equal(alone.GetProperty("layerBytes").GetInt64(), alone.GetProperty("unused").GetInt64());
        Assert.Equal(0, alone.GetProperty("exclusive").GetInt64());

        await StoreOkAsync("layer", "clone", "base", "--id", "c1");
        Dictionary<string, long> size = (await LsAsync()).EnumerateArray()
            .ToDictionary(l => l.GetProperty("id").GetString()!, l => l.GetProperty("size").GetInt64());

        JsonElement df = ParseJson((await StoreOkAsync("df", "--json")).Stdout);

        Assert.Equal(0, df.GetProperty("shared").GetInt64());
        Assert.Equal(0, df.GetProperty("unused").GetInt64());
        Assert.Equal(size["base"] + size["c1"], df.GetProperty("exclusive").GetInt64());
        JsonElement c1 = Assert.Single(df.GetProperty("containers").EnumerateArray());
        Assert.Equal(size["base"] + size["c1"], c1.GetProperty("exclusive").GetInt64());
        Assert.Equal(0, c1.GetProperty("shared").GetInt64());
    }

    [Fact]
    public async Task Table_shows_the_totals_the_images_and_the_containers()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw", (0, 65536, 1)));
        await StoreOkAsync("layer", "clone", "base", "--id", "c1");
        JsonElement df = ParseJson((await StoreOkAsync("df", "--json")).Stdout);

        string table = (await StoreOkAsync("df")).Stdout;

        foreach (string header in new[] { "STORE", "ALLOCATED", "SHARED", "EXCLUSIVE", "UNUSED", "OVERCOMMIT", "IMAGE LAYER", "CONTAINER" })
        {
            Assert.Contains(header, table, StringComparison.Ordinal);
        }

        string overcommit = df.GetProperty("overcommit").GetDouble().ToString("0.00", CultureInfo.InvariantCulture) + "x";
        Assert.Matches($@"(?m)^\s*{Root}\s.*\s{overcommit.Replace(".", @"\.", StringComparison.Ordinal)}\s*$", table);
        Assert.Matches(@"(?m)^\s*base\s+-\s.*\s1\s+1\s*$", table);
        Assert.Matches(@"(?m)^\s*c1\s+base\s.*\s64 MiB\s*$", table);
    }
}
