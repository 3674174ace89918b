using BlockDriver.Cli.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class CompareCommandTests(ITestOutputHelper output) : CliTestBase(output)
{
    private const long MiB = TestImages.MiB;

    [Fact]
    public async Task Raw_and_vhdx_with_the_same_content_are_identical()
    {
        TestImages.WriteRaw(PathOf("a.raw"), 32 * MiB, (MiB, 1 << 20, 1), (20 * MiB, 4096, 2));
        await RunOkAsync("img", "convert", "-O", "vhdx", "a.raw", "a.vhdx");

        ProcessResult result = await RunAsync("img", "compare", "a.vhdx", "a.raw");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("Images are identical.", result.Stdout.Trim());
    }

    [Fact]
    public async Task Different_images_report_the_first_differing_byte()
    {
        TestImages.WriteRaw(PathOf("a.raw"), 32 * MiB, (MiB, 1 << 20, 1));
        File.Copy(PathOf("a.raw"), PathOf("b.raw"));
        const long Offset = (20 * MiB) + 123;
        using (var handle = File.OpenHandle(PathOf("b.raw"), FileMode.Open, FileAccess.Write))
        {
            RandomAccess.Write(handle, "x"u8, Offset);
            RandomAccess.Write(handle, "y"u8, Offset + 5000);
        }

        await RunOkAsync("img", "convert", "-O", "vhdx", "b.raw", "b.vhdx");

        ProcessResult result = await RunAsync("img", "compare", "a.raw", "b.vhdx");

        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"Content mismatch at offset {Offset}!", result.Stdout.Trim());
    }

    [Fact]
    public async Task Larger_image_with_a_zero_tail_is_identical_unless_strict()
    {
        TestImages.WriteRaw(PathOf("small.raw"), 8 * MiB, (MiB, 4096, 1));
        TestImages.WriteRaw(PathOf("large.raw"), 16 * MiB, (MiB, 4096, 1));

        ProcessResult lenient = await RunAsync("img", "compare", "small.raw", "large.raw");
        ProcessResult strict = await RunAsync("img", "compare", "--strict", "small.raw", "large.raw");

        Assert.Equal(0, lenient.ExitCode);
        Assert.Contains("Warning: Image size mismatch!", lenient.Stdout, StringComparison.Ordinal);
        Assert.Contains("Images are identical.", lenient.Stdout, StringComparison.Ordinal);
        Assert.Equal(1, strict.ExitCode);
        Assert.Contains("Image size mismatch", strict.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Data_in_the_tail_of_the_larger_image_is_a_mismatch()
    {
        TestImages.WriteRaw(PathOf("small.raw"), 8 * MiB, (MiB, 4096, 1));
        TestImages.WriteRaw(PathOf("large.raw"), 16 * MiB, (MiB, 4096, 1), (12 * MiB, 4096, 2));
        await RunOkAsync("img", "convert", "-O", "vhdx", "large.raw", "large.vhdx");

        ProcessResult result = await RunAsync("img", "compare", "large.vhdx", "small.raw");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"Content mismatch at offset {12 * MiB}!", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Errors_exit_with_2_because_1_means_different()
    {
        TestImages.WriteRaw(PathOf("a.raw"), MiB);

        ProcessResult missing = await RunAsync("img", "compare", "a.raw", "nothing.raw");
        ProcessResult usage = await RunAsync("img", "compare", "a.raw");

        AssertError(missing, 2, "no such file");
        Assert.Equal(2, usage.ExitCode);
        Assert.StartsWith("blockdriver: error: ", usage.Stderr, StringComparison.Ordinal);
    }
}
