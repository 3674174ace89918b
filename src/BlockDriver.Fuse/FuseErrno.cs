using BlockDriver.Abstractions;
using BlockDriver.Interop;

namespace BlockDriver.Fuse;

/// <summary>The one place where failures become Linux errno values for FUSE replies (generic numbering, the same
/// on x86-64 and arm64; the values are <see cref="Errno"/>'s). Exceptions never cross /dev/fuse; a reply carries the
/// negated value.</summary>
internal static class FuseErrno
{
    /// <summary>The errno a request fails with when its handler throws <paramref name="exception"/>.</summary>
    public static int From(Exception exception) => exception switch
    {
        BlockDriverException e => From(e.Kind),
        // The device's argument checks: the request did not fit the device (alignment or range).
        ArgumentException => Errno.EINVAL,
        OperationCanceledException => Errno.EINTR,
        // A device disposed under an open file: the file is gone.
        ObjectDisposedException => Errno.ENODEV,

        // The store's file system is full (or over quota): .NET puts the errno in an IOException's HResult on Unix.
        IOException { HResult: var h } when (h & 0xFFFF) is Errno.ENOSPC or Errno.EDQUOT => Errno.ENOSPC,
        _ => Errno.EIO,
    };

    /// <summary>ErrorKind → errno, as nbdkit's nbd_errno and containerd's errdefs do at their edges.</summary>
    public static int From(ErrorKind kind) => kind switch
    {
        ErrorKind.NotFound => Errno.ENOENT,
        ErrorKind.AlreadyExists => Errno.EEXIST,
        ErrorKind.InUse => Errno.EBUSY,
        ErrorKind.InvalidArgument => Errno.EINVAL,
        ErrorKind.ReadOnly => Errno.EROFS,
        ErrorKind.NoSpace => Errno.ENOSPC,
        // Corrupt data must not look like success or like a caller mistake: the kernel reports EIO upwards.
        ErrorKind.Corrupt => Errno.EIO,
        ErrorKind.Unavailable => Errno.EIO,
        _ => Errno.EIO,
    };
}
