namespace BlockDriver.Abstractions.Tests;

public class ByteSizeTests
{
    [Theory]
    [InlineData("512", 512L)]
    [InlineData("64K", 64L << 10)]
    [InlineData("64k", 64L << 10)]
    [InlineData("512M", 512L << 20)]
    [InlineData("2MiB", 2L << 20)]
    [InlineData("2MB", 2L << 20)]
    [InlineData("10G", 10L << 30)]
    [InlineData("1T", 1L << 40)]
    public void Sizes_with_binary_suffixes_parse(string text, long expected) =>
        Assert.Equal(expected, ByteSize.Parse(text, "size"));

    [Theory]
    [InlineData("")]
    [InlineData("G")]
    [InlineData("1.5G")]
    [InlineData("10X")]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("99999999999999999999")]
    [InlineData("9000000P")]
    public void Anything_else_is_an_invalid_argument(string text)
    {
        var e = Assert.Throws<BlockDriverException>(() => ByteSize.Parse(text, "size"));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
    }

    [Theory]
    [InlineData(0L, "0 B")]
    [InlineData(4096L, "4 KiB")]
    [InlineData(1536L << 20, "1.5 GiB")]
    [InlineData(10L << 30, "10 GiB")]
    public void Sizes_format_with_binary_units(long bytes, string expected) =>
        Assert.Equal(expected, ByteSize.Format(bytes));
}
