using BlockDriver.Interop;

namespace BlockDriver.Abstractions;

/// <summary>The one inward translation of a failed system call: errno → <see cref="BlockDriverException"/>, with a
/// message naming the operation, the path and the errno ("opening /s/run/x failed: Permission denied (EACCES)").
/// errno itself never travels further in.</summary>
public static class OsError
{
    /// <summary>The exception for <paramref name="operation"/> on <paramref name="path"/> failing with
    /// <paramref name="errno"/>; the kind follows the errno unless <paramref name="kind"/> says otherwise.</summary>
    public static BlockDriverException From(int errno, string operation, string path, ErrorKind? kind = null) =>
        new(kind ?? KindOf(errno), $"{operation} {path} failed: {Errno.Message(errno)} ({Errno.Name(errno)}).");

    /// <summary><see cref="From"/> with the errno of the last P/Invoke on this thread.</summary>
    public static BlockDriverException Last(string operation, string path, ErrorKind? kind = null) =>
        From(Errno.Last, operation, path, kind);

    /// <summary>The kind of failure an errno means; Unavailable for anything not listed (EIO among them).</summary>
    public static ErrorKind KindOf(int errno) => errno switch
    {
        Errno.ENOENT or Errno.ENOTDIR => ErrorKind.NotFound,
        Errno.EEXIST or Errno.ENOTEMPTY => ErrorKind.AlreadyExists,
        Errno.EBUSY or Errno.EAGAIN => ErrorKind.InUse,
        Errno.EINVAL or Errno.ELOOP or Errno.ENAMETOOLONG or Errno.EISDIR => ErrorKind.InvalidArgument,
        Errno.EROFS or Errno.EPERM or Errno.EACCES => ErrorKind.ReadOnly,
        Errno.ENOSPC or Errno.EDQUOT or Errno.EFBIG => ErrorKind.NoSpace,
        Errno.EUCLEAN => ErrorKind.Corrupt,
        _ => ErrorKind.Unavailable,
    };
}
