using System.Runtime.InteropServices;

namespace BlockDriver.Nbd;

/// <summary>The few libc calls .NET does not wrap: file type, socket pairs and the nbd ioctls.</summary>
internal static partial class LibC
{
    public const int AfUnix = 1;
    public const int SockStream = 1;
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;

    // S_IFMT / S_IFSOCK from <sys/stat.h>.
    private const ushort TypeMask = 0xF000;
    private const ushort TypeSocket = 0xC000;

    /// <summary>True when <paramref name="path"/> itself (not a symlink target) is a unix socket.</summary>
    public static unsafe bool IsSocket(string path)
    {
        // struct statx is the same on every architecture (unlike struct stat): 256 bytes, u16 stx_mode at 28.
        byte* buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, buffer) != 0)
        {
            return false;
        }

        ushort mode = *(ushort*)(buffer + 28);
        return (mode & TypeMask) == TypeSocket;
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int Statx(int dirfd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "socketpair", SetLastError = true)]
    public static unsafe partial int SocketPair(int domain, int type, int protocol, int* fds);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(nint fd, nuint request, nuint argument);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
