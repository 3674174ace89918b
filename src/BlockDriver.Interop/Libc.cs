using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Interop;

/// <summary>Every libc entry point BlockDriver calls that .NET does not wrap, declared once (x86-64/arm64 Linux,
/// glibc). Each sets errno for <see cref="Errno.Last"/>. Overloads taking a <see cref="SafeHandle"/> keep the
/// descriptor alive for the call; the <c>int</c> ones are for descriptors their caller owns by hand (the FUSE
/// loop, the loop-device ioctls, the tar code's directory chain), which close them in <c>finally</c>.</summary>
/// <remarks>Area constants (loop ioctls, FUSE ioctls, the *at flags) live in <see cref="LoopNative"/>,
/// <see cref="FuseNative"/>, <see cref="MountNative"/> and <see cref="FsNative"/>; the *at(2) family with byte
/// names is in <see cref="FsNative"/>.</remarks>
internal static unsafe partial class Libc
{
    // socket(2) domain and type.
    public const int AfUnix = 1;
    public const int SockStream = 1;

    // fallocate(2) modes, from linux/falloc.h.
    public const int FallocFlKeepSize = 0x01;
    public const int FallocFlPunchHole = 0x02;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, uint mode);

    /// <summary>open(2) whose descriptor a <see cref="SafeFileHandle"/> owns (invalid on failure: check
    /// <see cref="SafeHandle.IsInvalid"/>, then <see cref="Errno.Last"/>). Unlike File.OpenHandle it opens
    /// directories and honours O_NOFOLLOW/O_PATH, and takes no flock of its own.</summary>
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial SafeFileHandle OpenHandle(string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, ref uint argument);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, nint argument);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, byte* argument);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(SafeHandle fd, nuint request, nuint argument);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string fileSystemType, ulong flags, string? data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Umount2(string target, int flags);

    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    public static partial int SyncFs(int fd);

    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    public static partial int SyncFs(SafeHandle fd);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(int directoryFd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true)]
    public static partial int Statx(int directoryFd, byte* path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(SafeHandle fd, int mode, long offset, long length);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    public static partial long Lseek(SafeHandle fd, long offset, int whence);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    public static partial long Lseek(int fd, long offset, int whence);

    [LibraryImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int Ftruncate(int fd, long length);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int Fcntl(SafeHandle fd, int command, ref FileLock.Flock lockInfo);

    [LibraryImport("libc", EntryPoint = "socketpair", SetLastError = true)]
    public static partial int SocketPair(int domain, int type, int protocol, int* fds);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    [LibraryImport("libc", EntryPoint = "getegid")]
    public static partial uint GetEffectiveGroupId();
}
