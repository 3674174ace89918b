using BlockDriver.Abstractions;

namespace BlockDriver.Docker.Tests;

public sealed class DockerSizeTests
{
    [Theory]
    [InlineData("4096", 4096L)]
    [InlineData("10G", 10L << 30)]
    [InlineData("10g", 10L << 30)]
    [InlineData("20GB", 20L << 30)]
    [InlineData("1.5GiB", 3L << 29)]
    [InlineData("512m", 512L << 20)]
    [InlineData("256MB", 256L << 20)]
    [InlineData("64k", 64L << 10)]
    [InlineData("1T", 1L << 40)]
    public void Docker_size_strings_are_binary_units(string text, long bytes) => Assert.Equal(bytes, DockerSize.Parse(text, "size"));

    [Theory]
    [InlineData("")]
    [InlineData("lots")]
    [InlineData("-1G")]
    [InlineData("0")]
    [InlineData("10X")]
    [InlineData("99999999P")]
    public void Other_strings_are_refused(string text)
    {
        BlockDriverException ex = Assert.Throws<BlockDriverException>(() => DockerSize.Parse(text, "storage option size"));
        Assert.Equal(ErrorKind.InvalidArgument, ex.Kind);
        Assert.Contains("storage option size", ex.Message, StringComparison.Ordinal);
    }
}
