using BlockDriver.Abstractions;

namespace BlockDriver.Fuse;

/// <summary>The one place where failures become Linux errno values for FUSE replies (generic numbering, the same
/// on x86-64 and arm64). Exceptions never cross /dev/fuse; a reply carries the negated value.</summary>
internal static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int EACCES = 13;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int ENOTDIR = 20;
    public const int EISDIR = 21;
    public const int EINVAL = 22;
    public const int EFBIG = 27;
    public const int ENOSPC = 28;
    public const int EROFS = 30;
    public const int ENAMETOOLONG = 36;
    public const int ENOSYS = 38;
    public const int EPROTO = 71;
    public const int EOPNOTSUPP = 95;
    public const int ECONNABORTED = 103;
    public const int ENOTCONN = 107;
    public const int EDQUOT = 122;

    /// <summary>The errno a request fails with when its handler throws <paramref name="exception"/>.</summary>
    public static int From(Exception exception) => exception switch
    {
        BlockDriverException e => From(e.Kind),
        // The device's argument checks: the request did not fit the device (alignment or range).
        ArgumentException => EINVAL,
        OperationCanceledException => EINTR,
        // A device disposed under an open file: the file is gone.
        ObjectDisposedException => ENODEV,

        // The store's file system is full (or over quota): .NET puts the errno in an IOException's HResult on Unix.
        IOException { HResult: var h } when (h & 0xFFFF) is ENOSPC or EDQUOT => ENOSPC,
        _ => EIO,
    };

    /// <summary>ErrorKind → errno, as nbdkit's nbd_errno and containerd's errdefs do at their edges.</summary>
    public static int From(ErrorKind kind) => kind switch
    {
        ErrorKind.NotFound => ENOENT,
        ErrorKind.AlreadyExists => EEXIST,
        ErrorKind.InUse => EBUSY,
        ErrorKind.InvalidArgument => EINVAL,
        ErrorKind.ReadOnly => EROFS,
        ErrorKind.NoSpace => ENOSPC,
        // Corrupt data must not look like success or like a caller mistake: the kernel reports EIO upwards.
        ErrorKind.Corrupt => EIO,
        ErrorKind.Unavailable => EIO,
        _ => EIO,
    };
}
