using System.Text.Json;
using BlockDriver.Cli.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class MapCommandTests(ITestOutputHelper output) : CliTestBase(output)
{
    private const long MiB = TestImages.MiB;

    [Fact]
    public async Task Each_extent_of_a_two_level_chain_names_the_file_that_holds_it()
    {
        await RunOkAsync("img", "create", "base.vhdx", "16M");
        await TestImages.WriteVhdxAsync(PathOf("base.vhdx"), (0, 1 << 20, 1));
        await RunOkAsync("img", "create", "-b", "base.vhdx", "child.vhdx");
        await TestImages.WriteVhdxAsync(PathOf("child.vhdx"), (4 * MiB, 64 * 1024, 2));
        await TestImages.ZeroVhdxAsync(PathOf("child.vhdx"), 8 * MiB, 2 * MiB);

        ProcessResult json = await RunOkAsync("img", "map", "--json", "child.vhdx");
        ProcessResult table = await RunOkAsync("img", "map", "child.vhdx");

        using var document = JsonDocument.Parse(json.Stdout);
        var extents = document.RootElement.EnumerateArray()
            .Select(e => (Start: e.GetProperty("start").GetInt64(), Length: e.GetProperty("length").GetInt64(),
                State: e.GetProperty("state").GetString(), Depth: e.GetProperty("depth"), File: e.GetProperty("file").GetString()))
            .ToList();
        Assert.Equal(0, extents[0].Start);
        Assert.Equal(16 * MiB, extents.Sum(e => e.Length));
        var baseData = Assert.Single(extents, e => e.State == "data" && e.Start == 0);
        Assert.Equal(PathOf("base.vhdx"), baseData.File);
        Assert.Equal(1, baseData.Depth.GetInt32());
        var childData = Assert.Single(extents, e => e.State == "data" && e.Start == 4 * MiB);
        Assert.Equal("child.vhdx", childData.File);
        Assert.Equal(0, childData.Depth.GetInt32());
        Assert.Equal(64 * 1024, childData.Length);
        var zero = Assert.Single(extents, e => e.State == "zero");
        Assert.Equal((8 * MiB, 2 * MiB, "child.vhdx"), (zero.Start, zero.Length, zero.File));
        Assert.All(extents.Where(e => e.State == "hole"), e => Assert.Null(e.File));

        string[] lines = table.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("Offset          Length          Mapped to       State   File", lines[0], StringComparison.Ordinal);
        Assert.Contains(lines, l => l.StartsWith("0 ", StringComparison.Ordinal) && l.EndsWith($"data    {PathOf("base.vhdx")}", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("0x400000 ", StringComparison.Ordinal) && l.EndsWith("data    child.vhdx", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Raw_file_maps_its_data_and_holes()
    {
        TestImages.WriteRaw(PathOf("disk.raw"), 8 * MiB, (2 * MiB, 1 << 20, 1));

        ProcessResult result = await RunOkAsync("img", "map", "--json", "disk.raw");

        using var document = JsonDocument.Parse(result.Stdout);
        JsonElement[] extents = [.. document.RootElement.EnumerateArray()];
        Assert.Equal(8 * MiB, extents.Sum(e => e.GetProperty("length").GetInt64()));

        // SEEK_DATA may round to file-system blocks (or, where unsupported, call everything data).
        JsonElement data = Assert.Single(extents, e => e.GetProperty("state").GetString() == "data"
            && e.GetProperty("start").GetInt64() <= 2 * MiB
            && e.GetProperty("start").GetInt64() + e.GetProperty("length").GetInt64() >= 3 * MiB);
        Assert.Equal("disk.raw", data.GetProperty("file").GetString());
        Assert.Equal(data.GetProperty("start").GetInt64(), data.GetProperty("offset").GetInt64());
    }
}
