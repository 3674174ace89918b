using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class LayerRmCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Removes_layers_children_first_and_deletes_their_files()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw", (0, 65536, 1)));
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c1");
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c2");

        ProcessResult result = await StoreOkAsync("layer", "rm", "c1", "c2", "base");

        Assert.Equal(["c1", "c2", "base"], result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Empty(await IdsAsync());
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(Root, "layers")));
    }

    [Fact]
    public async Task Layer_with_children_is_refused_and_the_message_names_them()
    {
        await SealedBaseAsync("base", WriteRaw("base.raw"));
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c1");
        await StoreOkAsync("layer", "create", "--parent", "base", "--id", "c2");

        AssertError(await StoreAsync("layer", "rm", "base"), 1, "layer base has 2 child layers (c1, c2); it cannot be removed.");

        Assert.Equal(["base", "c1", "c2"], await IdsAsync());
        Assert.True(File.Exists(LayerFile("base")));
    }

    [Fact]
    public async Task Layer_in_use_by_another_process_is_refused_naming_its_pid()
    {
        string raw = WriteRaw("base.raw", (MiB, 4096, 1));
        await ImportAsync(raw, "busy");

        using (LayerLockHolder holder = await HoldLayerLockAsync("busy"))
        {
            AssertError(await StoreAsync("layer", "rm", "busy"), 1, $"layer busy is in use by pid {holder.Pid}");
        }

        await AssertContentAsync("busy", raw);
        await StoreOkAsync("layer", "rm", "busy");
        await AssertNoLayerAsync("busy");
    }

    [Fact]
    public async Task Unknown_id_is_refused()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M");

        AssertError(await StoreAsync("layer", "rm", "nope"), 1, $"no layer nope in {Root}.");
        AssertError(await StoreAsync("layer", "rm", "../base"), 1, $"no layer ../base in {Root}.");

        Assert.Equal(["base"], await IdsAsync());
    }
}
