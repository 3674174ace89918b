using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class LayerLsCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    private static readonly string[] Keys =
        ["id", "parent", "kind", "state", "size", "virtualSize", "capacity", "children", "containers", "created", "labels", "path"];

    [Fact]
    public async Task Json_lists_every_layer_parents_first_with_every_key()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw", (0, 2 << 20, 1)));
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c1", "--label", "role=db");
        await StoreOkAsync("layer", "create", "--blank", "--id", "other", "--size", "32M");

        JsonElement[] layers = [.. (await LsAsync()).EnumerateArray()];

        Assert.Equal(["base", "c1", "other"], layers.Select(l => l.GetProperty("id").GetString()));
        Assert.All(layers, l => Assert.Equal(Keys, l.EnumerateObject().Select(p => p.Name)));
        (JsonElement b, JsonElement c1, JsonElement other) = (layers[0], layers[1], layers[2]);
        Assert.Equal(JsonValueKind.Null, b.GetProperty("parent").ValueKind);
        Assert.Equal(("image", "sealed", 1, 1), (b.GetProperty("kind").GetString(), b.GetProperty("state").GetString(),
            b.GetProperty("children").GetInt32(), b.GetProperty("containers").GetInt32()));
        Assert.Equal(b.GetProperty("size").GetInt64(), b.GetProperty("virtualSize").GetInt64());
        Assert.InRange(b.GetProperty("size").GetInt64(), 2 << 20, 8 * MiB);
        Assert.Equal("base", c1.GetProperty("parent").GetString());
        Assert.Equal(("container", "writable", 0), (c1.GetProperty("kind").GetString(), c1.GetProperty("state").GetString(),
            c1.GetProperty("children").GetInt32()));
        Assert.Equal(b.GetProperty("size").GetInt64() + c1.GetProperty("size").GetInt64(), c1.GetProperty("virtualSize").GetInt64());
        Assert.Equal("db", c1.GetProperty("labels").GetProperty("role").GetString());
        Assert.Equal(32 * MiB, other.GetProperty("capacity").GetInt64());
        Assert.All(layers, l => Assert.Equal(LayerFile(l.GetProperty("id").GetString()!), l.GetProperty("path").GetString()));
        Assert.All(layers, l => Assert.True(l.GetProperty("created").TryGetDateTimeOffset(out _)));
    }

    [Fact]
    public async Task Table_has_the_headers_and_a_row_per_layer()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw", (0, 65536, 1)));
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c1");

        string[] lines = (await StoreOkAsync("layer", "ls")).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        string header = Assert.Single(lines, l => l.Contains("VIRTUAL SIZE", StringComparison.Ordinal));
        foreach (string column in new[] { "ID", "PARENT", "KIND", "STATE", "SIZE", "CAPACITY", "CHILDREN", "CREATED" })
        {
            Assert.Contains(column, header, StringComparison.Ordinal);
        }

        Assert.Matches(@"^\s*base\s+-\s+image\s+sealed\s.*64 MiB\s+1\s", Assert.Single(lines, l => l.TrimStart().StartsWith("base ", StringComparison.Ordinal)));
        Assert.Matches(@"^\s*c1\s+base\s+container\s+writable\s.*64 MiB\s+0\s", Assert.Single(lines, l => l.TrimStart().StartsWith("c1 ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Parents_are_listed_before_their_children_after_a_snapshot_and_a_revert()
    {
        // ILayerStore.List promises parents before children; snapshot and revert give an older layer a newer parent.
        await SealedBaseAsync("base", WriteRaw("base.raw", (0, 65536, 1)));
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c1");
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c2");
        await StoreOkAsync("layer", "snapshot", "c1", "--id", "c1.1");
        await StoreOkAsync("layer", "create", "--blank", "--id", "late", "--size", "64M");
        await StoreOkAsync("layer", "seal", "late");
        await StoreOkAsync("layer", "revert", "c2", "late");

        JsonElement[] layers = [.. (await LsAsync()).EnumerateArray()];

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (JsonElement layer in layers)
        {
            string id = layer.GetProperty("id").GetString()!;
            if (layer.GetProperty("parent").GetString() is string parent)
            {
                Assert.True(seen.Contains(parent), $"{id} is listed before its parent {parent}: {string.Join(", ", layers.Select(l => l.GetProperty("id")))}");
            }

            seen.Add(id);
        }

        Assert.Equal(5, seen.Count);
    }

    [Fact]
    public async Task Store_without_layers_lists_nothing()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "x", "--size", "64M");
        await StoreOkAsync("layer", "rm", "x");

        Assert.Equal(JsonValueKind.Array, (await LsAsync()).ValueKind);
        Assert.Empty((await LsAsync()).EnumerateArray());
    }
}
