using BlockDriver.Cli.Tests.Support;
using BlockDriver.Vhdx;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class CreateCommandTests(ITestOutputHelper output) : CliTestBase(output)
{
    [Fact]
    public async Task Dynamic_image_gets_the_size_given_with_a_suffix()
    {
        ProcessResult result = await RunOkAsync("img", "create", "disk.vhdx", "64M");

        Assert.Contains("Formatting 'disk.vhdx', fmt=vhdx size=67108864 block_size=2097152", result.Stdout, StringComparison.Ordinal);
        await using VhdxFile file = VhdxFile.Open(PathOf("disk.vhdx"), readOnly: true);
        Assert.Equal(64 * TestImages.MiB, file.VirtualSize);
        Assert.False(file.HasParent);
        Assert.True(TestImages.Allocated(PathOf("disk.vhdx")) < TestImages.MiB, "a new dynamic image holds only its metadata");
    }

    [Fact]
    public async Task Block_size_and_sector_size_options_are_applied()
    {
        await RunOkAsync("img", "create", "--block-size", "8M", "--sector-size", "4096", "disk.vhdx", "1G");

        await using VhdxFile file = VhdxFile.Open(PathOf("disk.vhdx"), readOnly: true);
        Assert.Equal(1L << 30, file.VirtualSize);
        Assert.Equal(8 * (int)TestImages.MiB, file.BlockSize);
        Assert.Equal(4096, file.LogicalSectorSize);
    }

    [Fact]
    public async Task Differencing_image_takes_the_parents_size_and_links_to_it()
    {
        await RunOkAsync("img", "create", "base.vhdx", "32M");

        ProcessResult result = await RunOkAsync("img", "create", "-b", "base.vhdx", "child.vhdx");

        Assert.Contains("backing_file=base.vhdx", result.Stdout, StringComparison.Ordinal);
        await using VhdxDisk disk = VhdxDisk.Open(PathOf("child.vhdx"), new VhdxOpenOptions { ReadOnly = true });
        Assert.Equal(2, disk.Files.Count);
        Assert.Equal(32 * TestImages.MiB, disk.Length);
        Assert.Equal(PathOf("base.vhdx"), disk.Files[1].Path);
    }

    [Fact]
    public async Task Differencing_image_accepts_the_parents_size_and_refuses_another()
    {
        await RunOkAsync("img", "create", "base.vhdx", "32M");

        await RunOkAsync("img", "create", "-b", "base.vhdx", "same.vhdx", "32M");
        ProcessResult refused = await RunAsync("img", "create", "-b", "base.vhdx", "other.vhdx", "64M");

        AssertError(refused, 1, "parent's");
        Assert.False(File.Exists(PathOf("other.vhdx")));
    }

    [Theory]
    [InlineData("10X")]
    [InlineData("abc")]
    [InlineData("0")]
    [InlineData("-5M")]
    [InlineData("1000")]
    [InlineData("100T")]
    public async Task Bad_size_is_an_error_and_creates_no_file(string size)
    {
        ProcessResult result = await RunAsync("img", "create", "disk.vhdx", size);

        Assert.NotEqual(0, result.ExitCode);
        Assert.StartsWith("blockdriver: error: ", result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(PathOf("disk.vhdx")));
    }

    [Fact]
    public async Task Dynamic_image_without_a_size_is_an_error()
    {
        ProcessResult result = await RunAsync("img", "create", "disk.vhdx");

        AssertError(result, 1, "size is required");
        Assert.False(File.Exists(PathOf("disk.vhdx")));
    }

    [Fact]
    public async Task Existing_file_is_not_overwritten()
    {
        await File.WriteAllTextAsync(PathOf("disk.vhdx"), "precious");

        ProcessResult result = await RunAsync("img", "create", "disk.vhdx", "1M");

        AssertError(result, 1, "already exists");
        Assert.Equal("precious", await File.ReadAllTextAsync(PathOf("disk.vhdx")));
    }

    [Fact]
    public async Task Raw_parent_is_refused()
    {
        TestImages.WriteRaw(PathOf("base.raw"), TestImages.MiB);

        ProcessResult result = await RunAsync("img", "create", "-b", "base.raw", "child.vhdx");

        AssertError(result, 1, "must be a VHDX file");
        Assert.False(File.Exists(PathOf("child.vhdx")));
    }
}
