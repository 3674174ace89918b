namespace BlockDriver.Abstractions.Tests;

public sealed class OsErrorTests
{
    [Theory]
    [InlineData(2, ErrorKind.NotFound, "No such file or directory (ENOENT)")]
    [InlineData(16, ErrorKind.InUse, "Device or resource busy (EBUSY)")]
    [InlineData(28, ErrorKind.NoSpace, "No space left on device (ENOSPC)")]
    [InlineData(30, ErrorKind.ReadOnly, "Read-only file system (EROFS)")]
    [InlineData(5, ErrorKind.Unavailable, "Input/output error (EIO)")]
    [InlineData(40, ErrorKind.InvalidArgument, "Too many levels of symbolic links (ELOOP)")]
    public void An_errno_becomes_a_kind_and_a_message_naming_the_operation_the_path_and_the_errno(int errno, ErrorKind kind, string text)
    {
        BlockDriverException error = OsError.From(errno, "opening", "/s/run/x.lock");
        Assert.Equal(kind, error.Kind);
        Assert.Equal($"opening /s/run/x.lock failed: {text}.", error.Message);
    }

    [Fact]
    public void A_caller_may_choose_the_kind_and_an_unlisted_errno_is_named_by_number()
    {
        BlockDriverException error = OsError.From(200, "flushing", "/m", ErrorKind.Unavailable);
        Assert.Equal(ErrorKind.Unavailable, error.Kind);
        Assert.EndsWith("(errno 200).", error.Message, StringComparison.Ordinal);
    }
}
