using System.Runtime.InteropServices;

namespace BlockDriver.Interop;

/// <summary>The *at(2) family and friends: everything the tar code does to a layer's tree goes through a directory
/// file descriptor and a single name, or an fd of the entry itself, never a path the kernel would resolve through
/// symbolic links, so that nothing in a (possibly hostile) tree can redirect a change outside the layer root. Names
/// are bytes (a file name need not be UTF-8); the wrappers add the terminating NUL. Every call sets errno.</summary>
internal static unsafe partial class FsNative
{
    public const int ORdOnly = 0x0;
    public const int OWrOnly = 0x1;
    public const int OCreat = 0x40;
    public const int OExcl = 0x80;
    public const int ODirectory = 0x10000;
    public const int ONoFollow = 0x20000;
    public const int OCloExec = 0x80000;
    public const int OPath = 0x200000;

    public const int AtFdCwd = -100;
    public const int AtSymlinkNoFollow = 0x100;
    public const int AtRemoveDir = 0x200;
    public const int AtEmptyPath = 0x1000;

    // openat2(2): RESOLVE_NO_MAGICLINKS | RESOLVE_IN_ROOT — the path is resolved as if the directory fd were "/",
    // so "..", absolute symbolic links and relative ones climbing out all stay inside it.
    public const ulong ResolveNoMagicLinks = 0x02;
    public const ulong ResolveInRoot = 0x10;
    private const long SysOpenat2 = 437;

    public const uint SIfMt = 0xF000;
    public const uint SIfDir = 0x4000;
    public const uint SIfReg = 0x8000;
    public const uint SIfLnk = 0xA000;
    public const uint SIfChr = 0x2000;
    public const uint SIfBlk = 0x6000;
    public const uint SIfIfo = 0x1000;


    public const int SeekData = 3;
    public const int SeekHole = 4;

    [StructLayout(LayoutKind.Sequential)]
    public struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>A NUL-terminated copy of a name for the kernel.</summary>
    public static byte[] Z(ReadOnlySpan<byte> name)
    {
        byte[] z = new byte[name.Length + 1];
        name.CopyTo(z);
        return z;
    }

    public static int Openat2(int dirfd, ReadOnlySpan<byte> path, ulong flags, ulong resolve)
    {
        var how = new OpenHow { Flags = flags, Resolve = resolve };
        fixed (byte* p = Z(path))
        {
            return (int)Syscall(SysOpenat2, dirfd, p, &how, (nuint)sizeof(OpenHow));
        }
    }

    public static int Open(string path, int flags, uint mode) => Libc.Open(path, flags, mode);

    public static int Openat(int dirfd, ReadOnlySpan<byte> name, int flags, uint mode)
    {
        fixed (byte* p = Z(name))
        {
            return OpenatNative(dirfd, p, flags, mode);
        }
    }

    public static int Mkdirat(int dirfd, ReadOnlySpan<byte> name, uint mode)
    {
        fixed (byte* p = Z(name))
        {
            return MkdiratNative(dirfd, p, mode);
        }
    }

    public static int Mknodat(int dirfd, ReadOnlySpan<byte> name, uint mode, ulong dev)
    {
        fixed (byte* p = Z(name))
        {
            return MknodatNative(dirfd, p, mode, dev);
        }
    }

    public static int Symlinkat(ReadOnlySpan<byte> target, int dirfd, ReadOnlySpan<byte> name)
    {
        fixed (byte* t = Z(target))
        fixed (byte* p = Z(name))
        {
            return SymlinkatNative(t, dirfd, p);
        }
    }

    public static int Linkat(int olddirfd, ReadOnlySpan<byte> oldname, int newdirfd, ReadOnlySpan<byte> newname, int flags)
    {
        fixed (byte* o = Z(oldname))
        fixed (byte* n = Z(newname))
        {
            return LinkatNative(olddirfd, o, newdirfd, n, flags);
        }
    }

    public static int Unlinkat(int dirfd, ReadOnlySpan<byte> name, int flags)
    {
        fixed (byte* p = Z(name))
        {
            return UnlinkatNative(dirfd, p, flags);
        }
    }

    /// <summary>fchownat(fd, "", AT_EMPTY_PATH): the owner of what <paramref name="fd"/> (O_PATH is fine) is,
    /// a symbolic link itself included (lchown).</summary>
    public static int FchownEmptyPath(int fd, int uid, int gid)
    {
        byte empty = 0;
        return FchownatNative(fd, &empty, uid, gid, AtEmptyPath);
    }

    /// <summary>utimensat(fd, "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW): the times of what
    /// <paramref name="fd"/> (O_PATH is fine) is, never a link's target.</summary>
    public static int UtimensEmptyPath(int fd, Timespec* times)
    {
        byte empty = 0;
        return UtimensatNative(fd, &empty, times, AtEmptyPath | AtSymlinkNoFollow);
    }

    /// <summary>The mode of what <paramref name="fd"/> is (not a symbolic link: checked by the caller): fchmod
    /// through the fd's /proc magic link, which names that very inode (fchmod itself refuses O_PATH fds).</summary>
    public static int FchmodPath(int fd, uint mode) => ChmodNative($"/proc/self/fd/{fd}", mode);

    public static int Statx(int dirfd, ReadOnlySpan<byte> name, int flags, uint mask, byte* buffer)
    {
        fixed (byte* p = Z(name))
        {
            return Libc.Statx(dirfd, p, flags, mask, buffer);
        }
    }

    public static nint Readlinkat(int dirfd, ReadOnlySpan<byte> name, byte* buffer, nuint size)
    {
        fixed (byte* p = Z(name))
        {
            return ReadlinkatNative(dirfd, p, buffer, size);
        }
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, int dirfd, byte* path, OpenHow* how, nuint size);


    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true)]
    private static partial int OpenatNative(int dirfd, byte* name, int flags, uint mode);

    public static int Close(int fd) => Libc.Close(fd);

    [LibraryImport("libc", EntryPoint = "mkdirat", SetLastError = true)]
    private static partial int MkdiratNative(int dirfd, byte* name, uint mode);

    [LibraryImport("libc", EntryPoint = "mknodat", SetLastError = true)]
    private static partial int MknodatNative(int dirfd, byte* name, uint mode, ulong dev);

    [LibraryImport("libc", EntryPoint = "symlinkat", SetLastError = true)]
    private static partial int SymlinkatNative(byte* target, int dirfd, byte* name);

    [LibraryImport("libc", EntryPoint = "linkat", SetLastError = true)]
    private static partial int LinkatNative(int olddirfd, byte* oldname, int newdirfd, byte* newname, int flags);

    [LibraryImport("libc", EntryPoint = "unlinkat", SetLastError = true)]
    private static partial int UnlinkatNative(int dirfd, byte* name, int flags);

    [LibraryImport("libc", EntryPoint = "fchownat", SetLastError = true)]
    private static partial int FchownatNative(int dirfd, byte* name, int uid, int gid, int flags);

    [LibraryImport("libc", EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChmodNative(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "utimensat", SetLastError = true)]
    private static partial int UtimensatNative(int dirfd, byte* name, Timespec* times, int flags);

    public static int Ftruncate(int fd, long length) => Libc.Ftruncate(fd, length);

    public static long Lseek(int fd, long offset, int whence) => Libc.Lseek(fd, offset, whence);

    [LibraryImport("libc", EntryPoint = "getdents64", SetLastError = true)]
    public static partial nint Getdents64(int fd, byte* buffer, nuint size);

    [LibraryImport("libc", EntryPoint = "setxattr", SetLastError = true)]
    public static partial int Setxattr(byte* path, byte* name, byte* value, nuint size, int flags);

    [LibraryImport("libc", EntryPoint = "lsetxattr", SetLastError = true)]
    public static partial int Lsetxattr(byte* path, byte* name, byte* value, nuint size, int flags);

    [LibraryImport("libc", EntryPoint = "llistxattr", SetLastError = true)]
    public static partial nint Llistxattr(byte* path, byte* list, nuint size);

    [LibraryImport("libc", EntryPoint = "lgetxattr", SetLastError = true)]
    public static partial nint Lgetxattr(byte* path, byte* name, byte* value, nuint size);

    [LibraryImport("libc", EntryPoint = "readlinkat", SetLastError = true)]
    private static partial nint ReadlinkatNative(int dirfd, byte* name, byte* buffer, nuint size);

    /// <summary>makedev(3): glibc's encoding of a device number.</summary>
    public static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) | ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);
}
