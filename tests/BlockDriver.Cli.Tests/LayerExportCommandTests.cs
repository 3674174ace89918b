using System.Security.Cryptography;
using BlockDriver.Cli.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class LayerExportCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    [Fact]
    public async Task Export_reads_through_the_whole_chain_as_raw_and_as_a_standalone_vhdx()
    {
        string baseRaw = WriteRaw("base.raw", (0, 2 << 20, 1), (Capacity - MiB, 65536, 2));
        await SealedBaseAsync("base", baseRaw);
        string topRaw = ModifyRaw(baseRaw, "top.raw", (MiB, 65536, 3), (33 * MiB, 4096, 4));
        await ImportAsync(topRaw, "top", parent: "base", seal: true);
        byte[] sealedBefore = SHA256.HashData(File.ReadAllBytes(LayerFile("base")));

        await StoreOkAsync("layer", "export", "top", PathOf("out.raw"));
        await StoreOkAsync("layer", "export", "top", PathOf("out.vhdx"));

        AssertSameBytes(topRaw, PathOf("out.raw"));
        ProcessResult compare = await QemuImg.RunAsync(Temp.FullName, "compare", "-f", "raw", "-F", "vhdx", "top.raw", "out.vhdx");
        Assert.True(compare.ExitCode == 0, $"qemu-img compare: {compare}");
        ProcessResult info = await QemuImg.RunAsync(Temp.FullName, "info", "out.vhdx");
        Assert.Contains("file format: vhdx", info.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("backing file", info.Stdout, StringComparison.Ordinal);
        Assert.Equal(0, (await QemuImg.RunAsync(Temp.FullName, "check", "out.vhdx")).ExitCode);
        Assert.Equal(sealedBefore, SHA256.HashData(File.ReadAllBytes(LayerFile("base"))));
    }

    [Fact]
    public async Task Format_option_overrides_the_extension_and_an_existing_file_is_replaced()
    {
        string raw = WriteRaw("base.raw", (MiB, 4096, 1));
        await ImportAsync(raw, "base");
        await File.WriteAllTextAsync(PathOf("out.img"), "old content");

        await StoreOkAsync("layer", "export", "base", PathOf("out.img"), "-O", "vhdx");
        await StoreOkAsync("layer", "export", "base", PathOf("out.vhdx"), "--format", "raw");

        Assert.Contains("file format: vhdx", (await QemuImg.RunAsync(Temp.FullName, "info", "out.img")).Stdout, StringComparison.Ordinal);
        Assert.Equal(0, (await QemuImg.RunAsync(Temp.FullName, "compare", "-f", "raw", "-F", "vhdx", "base.raw", "out.img")).ExitCode);
        AssertSameBytes(raw, PathOf("out.vhdx"));
    }

    [Fact]
    public async Task Bad_format_destination_or_id_is_refused_and_writes_nothing()
    {
        await StoreOkAsync("layer", "create", "--blank", "--id", "base", "--size", "64M");

        AssertError(await StoreAsync("layer", "export", "base", PathOf("out.qcow2"), "-O", "qcow2"), 1, "unknown format \"qcow2\"; use raw or vhdx.");
        AssertError(await StoreAsync("layer", "export", "base", Path.Combine(Root, "layers", "copy.raw")), 1, "is inside the store; export somewhere else.");
        AssertError(await StoreAsync("layer", "export", "base", Temp.FullName), 1, "is a directory.");
        AssertError(await StoreAsync("layer", "export", "nope", PathOf("out.raw")), 1, $"no layer nope in {Root}.");

        Assert.Equal(["store"], Directory.GetFileSystemEntries(Temp.FullName).Select(Path.GetFileName));
        Assert.Equal([LayerFile("base")], Directory.GetFiles(Path.Combine(Root, "layers")));
    }
}
