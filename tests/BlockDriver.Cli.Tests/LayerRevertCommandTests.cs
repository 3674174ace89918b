using BlockDriver.Cli.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class LayerRevertCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Revert_discards_what_was_written_since_the_snapshot()
    {
        string baseRaw = WriteRaw("base.raw", (0, 1 << 20, 1));
        await SealedBaseAsync("base", baseRaw);
        string atSnapshot = ModifyRaw(baseRaw, "snap.raw", (4 * MiB, 65536, 2));
        await ImportAsync(atSnapshot, "c1", parent: "base");
        await StoreOkAsync("layer", "snapshot", "c1", "--id", "c1.1");
        // Written after the snapshot, straight into c1's file (the CLI has no write verb; NBD/FUSE would do this).
        await TestImages.WriteVhdxAsync(LayerFile("c1"), (0, 4096, 3), (20 * MiB, 65536, 4));
        string snapshotFile = PathOf("snapshot-file.vhdx");
        File.Copy(LayerFile("c1.1"), snapshotFile);

        Assert.Equal("c1", (await StoreOkAsync("layer", "revert", "c1", "c1.1")).Stdout.Trim());

        await AssertContentAsync("c1", atSnapshot);
        Assert.Equal("c1.1", (await InspectAsync("c1")).GetProperty("parent").GetString());
        Assert.Equal(File.ReadAllBytes(snapshotFile), File.ReadAllBytes(LayerFile("c1.1")));
    }

    [Fact]
    public async Task Revert_to_another_sealed_layer_makes_the_layer_read_as_it()
    {
        string baseRaw = WriteRaw("base.raw", (0, 1 << 20, 1));
        await SealedBaseAsync("base", baseRaw);
        await ImportAsync(ModifyRaw(baseRaw, "c1.raw", (MiB, 4096, 2)), "c1", parent: "base");

        await StoreOkAsync("layer", "revert", "c1", "base");

        await AssertContentAsync("c1", baseRaw);
        Assert.Equal("base", (await InspectAsync("c1")).GetProperty("parent").GetString());
    }

    [Fact]
    public async Task Revert_to_a_writable_layer_is_refused()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "a", "--size", "64M");
        await StoreOkAsync("layer", "create", "--blank", "--id", "b", "--size", "64M");

        AssertError(await StoreAsync("layer", "revert", "a", "b"), 1, "layer b is writable; a layer can only be reverted to a sealed one.");
    }

    [Fact]
    public async Task Revert_of_a_layer_to_itself_is_refused_and_makes_no_cycle()
    {
        string raw = WriteRaw("a.raw", (0, 4096, 1));
        await ImportAsync(raw, "a");

        AssertError(await StoreAsync("layer", "revert", "a", "a"), 1, "layer a is writable; a layer can only be reverted to a sealed one.");

        Assert.Equal(System.Text.Json.JsonValueKind.Null, (await InspectAsync("a")).GetProperty("parent").ValueKind);
        await AssertContentAsync("a", raw);
    }

    [Fact]
    public async Task Revert_of_a_sealed_layer_or_to_an_unknown_or_other_size_layer_is_refused()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw"));
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c1");
        await StoreOkAsync("layer", "snapshot", "c1", "--id", "s1");
        await StoreOkAsync("layer", "create", "--blank", "--id", "small", "--size", "32M");
        await StoreOkAsync("layer", "seal", "small");

        AssertError(await StoreAsync("layer", "revert", "s1", "base"), 1, "layer s1 is sealed; only a writable layer can be reverted.");
        AssertError(await StoreAsync("layer", "revert", "c1", "nope"), 1, $"no layer nope in {Root}.");
        AssertError(await StoreAsync("layer", "revert", "nope", "base"), 1, $"no layer nope in {Root}.");
        AssertError(await StoreAsync("layer", "revert", "c1", "small"), 1,
            "layer small is a 33554432-byte disk and c1 a 67108864-byte one; revert needs the same size.");

        Assert.Equal("s1", (await InspectAsync("c1")).GetProperty("parent").GetString());
    }
}
