using Xunit.Abstractions;

namespace BlockDriver.Core.Tests;

/// <summary>Kills the real <c>blockdriver</c> (SIGKILL, from inside, at a named point) in the middle of each
/// multi-step store operation, then opens the store as the next process would: the operation must be rolled back or
/// forward, every layer must open and read what it should, and a second open must find nothing more to repair.</summary>
public sealed class StoreCrashTests(ITestOutputHelper output) : StoreTestBase
{
    private const int KilledBySigkill = 128 + 9;

    [Theory]
    [InlineData("create.file")]
    public async Task A_create_killed_midway_is_rolled_back(string point)
    {
        await SealedBaseAsync();
        await CrashAsync(point, "layer", "create", "--parent", "base", "--id", "c");
        await ExpectRepairedAsync("c", "rolled back");
        Assert.Null(Store.Find("c"));
        Assert.False(File.Exists(LayerFile("c")));
    }

    [Theory]
    [InlineData("import.copied")]
    [InlineData("import.renamed")]
    public async Task An_import_killed_midway_is_rolled_back(string point)
    {
        string raw = Temp.GetFilePath("in.raw");
        await File.WriteAllBytesAsync(raw, TestPatterns.Bytes(3, 4 << 20));
        await CrashAsync(point, "layer", "import", raw, "--id", "imp");
        await ExpectRepairedAsync("imp", "rolled back");
        Assert.Null(Store.Find("imp"));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(Root, "layers")));
    }

    [Fact]
    public async Task A_seal_under_a_new_id_killed_after_the_rename_is_rolled_forward()
    {
        await Store.CreateAsync(new LayerSpec { Id = "w", Capacity = Capacity });
        await WriteAsync("w", 0, 1 << 20, 4);
        byte[] content = await ContentAsync("w");
        await CrashAsync("seal.renamed", "layer", "seal", "w", "--as", "img");
        await ExpectRepairedAsync("w", "rolled forward");
        Assert.Null(Store.Find("w"));
        Assert.Equal(LayerState.Sealed, Store.Get("img").State);
        Assert.Equal(content, await ContentAsync("img"));
    }

    [Fact]
    public async Task A_seal_in_place_killed_midway_leaves_the_layer_writable()
    {
        await Store.CreateAsync(new LayerSpec { Id = "w", Capacity = Capacity });
        byte[] data = await WriteAsync("w", 0, 4096, 5);
        await CrashAsync("seal.renamed", "layer", "seal", "w");
        await ExpectRepairedAsync("w", "rolled back");
        Assert.Equal(LayerState.Writable, Store.Get("w").State);
        Assert.Equal(data, (await ContentAsync("w"))[..4096]);
        await WriteAsync("w", 0, 512, 6);
    }

    [Fact]
    public async Task A_remove_killed_midway_is_rolled_forward()
    {
        await SealedBaseAsync();
        await Store.CloneAsync("base", "c");
        await WriteAsync("c", 0, 4 << 20, 7);
        await CrashAsync("remove.unlisted", "layer", "rm", "c");
        await ExpectRepairedAsync("c", "rolled forward");
        Assert.Null(Store.Find("c"));
        Assert.False(File.Exists(LayerFile("c")));
        Assert.Empty(Store.Children("base"));
    }

    [Theory]
    [InlineData("snapshot.renamed")]
    [InlineData("snapshot.child")]
    public async Task A_snapshot_killed_midway_is_rolled_back_with_the_data_intact(string point)
    {
        await SealedBaseAsync();
        await Store.CloneAsync("base", "vm");
        await WriteAsync("vm", 2 << 20, 1 << 20, 8);
        byte[] content = await ContentAsync("vm");
        await CrashAsync(point, "layer", "snapshot", "vm", "--id", "s");
        await ExpectRepairedAsync("vm", "rolled back");
        Assert.Null(Store.Find("s"));
        Assert.Equal("base", Store.Get("vm").Parent);
        Assert.Equal(content, await ContentAsync("vm"));
        await WriteAsync("vm", 0, 512, 9);
    }

    [Theory]
    [InlineData("revert.child", false)]
    [InlineData("revert.renamed", true)]
    public async Task A_revert_killed_midway_ends_either_reverted_or_untouched(string point, bool forward)
    {
        await Store.CreateAsync(new LayerSpec { Id = "vm", Capacity = Capacity });
        await WriteAsync("vm", 0, 4096, 10);
        byte[] atSnapshot = await ContentAsync("vm");
        await Store.SnapshotAsync("vm", "s");
        await WriteAsync("vm", 0, 4096, 11);
        byte[] current = await ContentAsync("vm");

        await CrashAsync(point, "layer", "revert", "vm", "s");

        await ExpectRepairedAsync("vm", forward ? "rolled forward" : "rolled back");
        Assert.Equal(forward ? atSnapshot : current, await ContentAsync("vm"));
        Assert.Equal("s", Store.Get("vm").Parent);
    }

    [Theory]
    [InlineData("merge.built", false)]
    [InlineData("merge.renamed", true)]
    public async Task A_merge_killed_midway_keeps_every_layer_readable(string point, bool forward)
    {
        await SealedBaseAsync();
        await Store.CreateAsync(new LayerSpec { Id = "mid", Parent = "base", Kind = LayerKind.Image });
        await WriteAsync("mid", 1 << 20, 2 << 20, 12);
        await Store.SealAsync("mid");
        await Store.CreateAsync(new LayerSpec { Id = "top", Parent = "mid", Kind = LayerKind.Image });
        await WriteAsync("top", 1 << 20, 4096, 13);
        await Store.SealAsync("top");
        await Store.CloneAsync("top", "c");
        byte[] content = await ContentAsync("c");

        await CrashAsync(point, "layer", "merge", "top");

        await ExpectRepairedAsync("top", forward ? "rolled forward" : "rolled back");
        Assert.Equal(forward ? "base" : "mid", Store.Get("top").Parent);
        Assert.Equal(forward, Store.Find("mid") is null);
        Assert.Equal(forward, !File.Exists(LayerFile("mid")));
        Assert.Equal(content, await ContentAsync("c"));
    }

    [Theory]
    [InlineData("flatten.built", false)]
    [InlineData("flatten.renamed", true)]
    public async Task A_flatten_killed_midway_keeps_the_content(string point, bool forward)
    {
        await SealedBaseAsync();
        await Store.CloneAsync("base", "c");
        await WriteAsync("c", 0, 4096, 14);
        byte[] content = await ContentAsync("c");

        await CrashAsync(point, "layer", "flatten", "c");

        await ExpectRepairedAsync("c", forward ? "rolled forward" : "rolled back");
        Assert.Equal(forward ? null : "base", Store.Get("c").Parent);
        Assert.Equal(content, await ContentAsync("c"));
    }

    private string LayerFile(string id) => Path.Combine(Root, "layers", id + ".vhdx");

    private async Task CrashAsync(string point, params string[] args)
    {
        ProcessResult result = await CliProcess.RunAsync(new Dictionary<string, string> { ["BLOCKDRIVER_CRASH_AT"] = point }, ["--root", Root, .. args]);
        output.WriteLine($"$ BLOCKDRIVER_CRASH_AT={point} blockdriver {string.Join(' ', args)}\n{result}");
        Assert.True(result.ExitCode == KilledBySigkill, $"expected the command to die at {point}: {result}");
    }

    // The next opener repairs exactly the one interrupted operation; the one after finds nothing.
    private async Task ExpectRepairedAsync(string layer, string action)
    {
        await ReopenStoreAsync();
        foreach (ReconcileAction repaired in Store.Reconciliation)
        {
            output.WriteLine($"repaired: {repaired}");
        }

        ReconcileAction only = Assert.Single(Store.Reconciliation);
        Assert.Equal(layer, only.Subject);
        Assert.StartsWith(action, only.Action, StringComparison.Ordinal);
        await ReopenStoreAsync();
        Assert.Empty(Store.Reconciliation);
        Assert.Empty(Directory.GetFiles(Path.Combine(Root, "layers"), "*.tmp", SearchOption.AllDirectories));
    }
}
