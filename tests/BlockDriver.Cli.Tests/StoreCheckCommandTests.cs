using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class StoreCheckCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Consistent_store_is_reported_as_such()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw", (0, 65536, 1)));
        await StoreOkAsync("layer", "clone", "base", "--id", "c1");

        ProcessResult result = await StoreOkAsync("store", "check");

        Assert.Equal($"{Root}: consistent.", result.Stdout.Trim());
        Assert.Empty(result.Stderr);
        Assert.Equal(JsonValueKind.Array, ParseJson((await StoreOkAsync("store", "check", "--json")).Stdout).ValueKind);
        Assert.Empty(ParseJson((await StoreOkAsync("store", "check", "--json")).Stdout).EnumerateArray());
    }

    [Fact]
    public async Task Stray_file_is_quarantined_and_a_missing_layer_file_is_reported_once_each()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "kept", "--size", "64M");
        await StoreOkAsync("layer", "create", "--blank", "--id", "lost", "--size", "64M");
        File.Delete(LayerFile("lost"));
        string stray = Path.Combine(Root, "layers", "stray.vhdx");
        await File.WriteAllTextAsync(stray, "not ours");

        ProcessResult result = await StoreAsync("store", "check", "--json");

        JsonElement[] findings = [.. ParseJson(result.Stdout).EnumerateArray()];
        Assert.All(findings, f => Assert.Equal(["subject", "finding", "action"], f.EnumerateObject().Select(p => p.Name)));
        JsonElement quarantined = Assert.Single(findings, f => f.GetProperty("subject").GetString() == "stray.vhdx");
        Assert.Equal("file without a catalog row", quarantined.GetProperty("finding").GetString());
        Assert.StartsWith($"quarantined to {Path.Combine(Root, "quarantine")}/", quarantined.GetProperty("action").GetString(), StringComparison.Ordinal);
        JsonElement missing = Assert.Single(findings, f => f.GetProperty("subject").GetString() == "lost");
        Assert.Equal($"file {LayerFile("lost")} is missing", missing.GetProperty("finding").GetString());
        Assert.StartsWith("reported", missing.GetProperty("action").GetString(), StringComparison.Ordinal);
        Assert.Equal(2, findings.Length);

        Assert.False(File.Exists(stray));
        string moved = Assert.Single(Directory.GetFiles(Path.Combine(Root, "quarantine")));
        Assert.EndsWith("-stray.vhdx", moved, StringComparison.Ordinal);
        Assert.Equal("not ours", await File.ReadAllTextAsync(moved));
    }

    [Fact]
    public async Task Removing_the_layer_whose_file_is_missing_makes_the_store_consistent()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "kept", "--size", "64M");
        await StoreOkAsync("layer", "create", "--blank", "--id", "lost", "--size", "64M");
        File.Delete(LayerFile("lost"));

        ProcessResult text = await StoreAsync("store", "check");
        Assert.Contains($"lost: file {LayerFile("lost")} is missing: reported", text.Stdout, StringComparison.Ordinal);

        await StoreOkAsync("layer", "rm", "lost");

        Assert.Equal($"{Root}: consistent.", (await StoreOkAsync("store", "check")).Stdout.Trim());
        Assert.Equal(["kept"], await IdsAsync());
    }
}
