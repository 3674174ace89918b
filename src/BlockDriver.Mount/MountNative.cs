using System.Runtime.InteropServices;

namespace BlockDriver.Mount;

/// <summary>The libc calls of the layer mounter: mount(2), umount2(2), syncfs(2) and flock(2). Every call sets errno
/// for <see cref="Marshal.GetLastPInvokeError"/>.</summary>
internal static partial class MountNative
{
    // include/uapi/linux/mount.h.
    public const ulong MsRdOnly = 1;
    public const ulong MsNoSuid = 2;
    public const ulong MsNoDev = 4;
    public const int MntDetach = 2;

    // include/uapi/asm-generic/fcntl.h (flock operations).
    public const int LockEx = 2;
    public const int LockNb = 4;
    public const int LockUn = 8;

    // include/uapi/linux/fs.h: FIFREEZE _IOWR('X', 119, int), FITHAW _IOWR('X', 120, int).
    public const ulong FiFreeze = 0xC0045877;
    public const ulong FiThaw = 0xC0045878;

    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EBUSY = 16;
    public const int ENOTDIR = 20;
    public const int EINVAL = 22;
    public const int EWOULDBLOCK = 11;

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string fileSystemType, ulong flags, string? data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Umount2(string target, int flags);

    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    public static partial int SyncFs(int fd);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(int fd, int operation);

    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
}
