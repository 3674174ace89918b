using System.Runtime.InteropServices;

namespace BlockDriver.Interop;

/// <summary>Linux errno values (asm-generic/errno-base.h and errno.h: the same numbers on x86-64 and arm64), their
/// names and their text. The only place they are written down; FUSE replies, NBD replies and every libc caller use
/// these.</summary>
internal static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int ENXIO = 6;
    public const int EBADF = 9;
    public const int EAGAIN = 11;

    /// <summary>The same value as <see cref="EAGAIN"/> on Linux.</summary>
    public const int EWOULDBLOCK = EAGAIN;
    public const int ENOMEM = 12;
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
    public const int EMLINK = 31;
    public const int ENAMETOOLONG = 36;
    public const int ENOSYS = 38;
    public const int ENOTEMPTY = 39;
    public const int ELOOP = 40;
    public const int ENODATA = 61;
    public const int EPROTO = 71;
    public const int EOPNOTSUPP = 95;

    /// <summary>The same value as <see cref="EOPNOTSUPP"/> on Linux.</summary>
    public const int ENOTSUP = EOPNOTSUPP;
    public const int ECONNABORTED = 103;
    public const int ENOTCONN = 107;
    public const int EUCLEAN = 117;
    public const int EDQUOT = 122;

    private static readonly Dictionary<int, string> Names = new()
    {
        [EPERM] = "EPERM",
        [ENOENT] = "ENOENT",
        [EINTR] = "EINTR",
        [EIO] = "EIO",
        [ENXIO] = "ENXIO",
        [EBADF] = "EBADF",
        [EAGAIN] = "EAGAIN",
        [ENOMEM] = "ENOMEM",
        [EACCES] = "EACCES",
        [EBUSY] = "EBUSY",
        [EEXIST] = "EEXIST",
        [ENODEV] = "ENODEV",
        [ENOTDIR] = "ENOTDIR",
        [EISDIR] = "EISDIR",
        [EINVAL] = "EINVAL",
        [EFBIG] = "EFBIG",
        [ENOSPC] = "ENOSPC",
        [EROFS] = "EROFS",
        [EMLINK] = "EMLINK",
        [ENAMETOOLONG] = "ENAMETOOLONG",
        [ENOSYS] = "ENOSYS",
        [ENOTEMPTY] = "ENOTEMPTY",
        [ELOOP] = "ELOOP",
        [ENODATA] = "ENODATA",
        [EPROTO] = "EPROTO",
        [EOPNOTSUPP] = "EOPNOTSUPP",
        [ECONNABORTED] = "ECONNABORTED",
        [ENOTCONN] = "ENOTCONN",
        [EUCLEAN] = "EUCLEAN",
        [EDQUOT] = "EDQUOT",
    };

    /// <summary>errno of the last P/Invoke on this thread (they all set SetLastError).</summary>
    public static int Last => Marshal.GetLastPInvokeError();

    /// <summary>The symbolic name ("ENOENT"), or "errno N" for a value not listed here.</summary>
    public static string Name(int errno) =>
        Names.TryGetValue(errno, out string? name) ? name : "errno " + errno.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>strerror text and the number, for messages: "No such file or directory (errno 2)".</summary>
    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";

    /// <summary>strerror text alone: "No such file or directory".</summary>
    public static string Message(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}
