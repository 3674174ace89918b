using BlockDriver.Cli.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

/// <summary>Interop with the real qemu-img (installed on CI; its absence fails these tests rather than skipping
/// them): our VHDX output passes qemu's check and compare, and qemu's VHDX output reads the same through us.</summary>
public class QemuInteropTests(ITestOutputHelper output) : CliTestBase(output)
{
    private const long MiB = TestImages.MiB;

    [Fact]
    public async Task Vhdx_written_by_convert_passes_qemu_img_check_and_compare()
    {
        WriteSource();

        await RunOkAsync("img", "convert", "-O", "vhdx", "source.raw", "ours.vhdx");

        await QemuOkAsync("check", "-f", "vhdx", "ours.vhdx");
        ProcessResult compare = await QemuOkAsync("compare", "-f", "raw", "-F", "vhdx", "source.raw", "ours.vhdx");
        Assert.Contains("Images are identical.", compare.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Vhdx_written_by_qemu_img_compares_identical_and_converts_back()
    {
        WriteSource();
        await QemuOkAsync("convert", "-f", "raw", "-O", "vhdx", "source.raw", "qemu.vhdx");

        ProcessResult compare = await RunAsync("img", "compare", "source.raw", "qemu.vhdx");
        await RunOkAsync("img", "check", "qemu.vhdx");
        await RunOkAsync("img", "convert", "qemu.vhdx", "back.raw");

        Assert.Equal(0, compare.ExitCode);
        Assert.Contains("Images are identical.", compare.Stdout, StringComparison.Ordinal);
        Assert.Equal(await File.ReadAllBytesAsync(PathOf("source.raw")), await File.ReadAllBytesAsync(PathOf("back.raw")));
    }

    [Fact]
    public async Task Vhdx_created_by_qemu_img_is_described_by_info()
    {
        await QemuOkAsync("create", "-f", "vhdx", "-o", "block_size=8M", "qemu.vhdx", "64M");

        ProcessResult result = await RunOkAsync("img", "info", "qemu.vhdx");

        Assert.Contains("virtual size: 64 MiB (67108864 bytes)", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("block size: 8 MiB (8388608 bytes)", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("type: dynamic", result.Stdout, StringComparison.Ordinal);
    }

    private void WriteSource()
    {
        int seed = Random.Shared.Next();
        Output.WriteLine($"seed {seed}");
        TestImages.WriteRaw(PathOf("source.raw"), 48 * MiB,
            (0, 4096, seed), (3 * MiB, 3 << 20, seed + 1), (17 * MiB + 512, 64 * 1024, seed + 2), (47 * MiB, 1 << 20, seed + 3));
    }

    private async Task<ProcessResult> QemuOkAsync(params string[] args)
    {
        ProcessResult result = await QemuImg.RunAsync(Temp.FullName, args);
        Output.WriteLine($"$ qemu-img {string.Join(' ', args)}\n{result}");
        Assert.True(result.ExitCode == 0, $"qemu-img {string.Join(' ', args)} failed: {result}");
        return result;
    }
}
