using BlockDriver.Abstractions;
using BlockDriver.Interop;

namespace BlockDriver.Fuse.Tests;

public sealed class ErrnoTests
{
    [Theory]
    [InlineData(ErrorKind.NotFound, 2)]
    [InlineData(ErrorKind.AlreadyExists, 17)]
    [InlineData(ErrorKind.InUse, 16)]
    [InlineData(ErrorKind.InvalidArgument, 22)]
    [InlineData(ErrorKind.ReadOnly, 30)]
    [InlineData(ErrorKind.NoSpace, 28)]
    [InlineData(ErrorKind.Corrupt, 5)]
    [InlineData(ErrorKind.Unavailable, 5)]
    public void Every_error_kind_has_its_errno(ErrorKind kind, int errno)
    {
        Assert.Equal(errno, FuseErrno.From(kind));
        Assert.Equal(errno, FuseErrno.From(new BlockDriverException(kind, "x")));
    }

    [Fact]
    public void Other_exceptions_map_to_what_the_caller_can_act_on()
    {
        Assert.Equal(Errno.EINVAL, FuseErrno.From(new ArgumentOutOfRangeException("offset")));
        Assert.Equal(Errno.EINTR, FuseErrno.From(new OperationCanceledException()));
        Assert.Equal(Errno.ENODEV, FuseErrno.From(new ObjectDisposedException("device")));
        Assert.Equal(Errno.EIO, FuseErrno.From(new IOException("disk")));
        Assert.Equal(Errno.EIO, FuseErrno.From(new InvalidOperationException()));
    }
}
