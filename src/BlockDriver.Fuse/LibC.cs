using System.Runtime.InteropServices;

namespace BlockDriver.Fuse;

/// <summary>The libc calls the FUSE server needs (x86-64/arm64 Linux). Every call sets errno for
/// <see cref="Marshal.GetLastPInvokeError"/>.</summary>
internal static unsafe partial class LibC
{
    // open(2) flags (asm-generic, x86-64 and arm64 alike).
    public const int ORdWr = 0x2;
    public const int OCloExec = 0x80000;

    // mount(2) flags: MS_RDONLY 1, MS_NOSUID 2, MS_NODEV 4; umount2(2) flags: MNT_FORCE 1, MNT_DETACH 2.
    public const ulong MsNoSuid = 0x2;
    public const ulong MsNoDev = 0x4;
    public const int MntDetach = 0x2;

    // FUSE_DEV_IOC_CLONE = _IOR(229, 0, uint32_t): dir 2 (read) << 30 | size 4 << 16 | type 229 (0xE5) << 8 | nr 0.
    public const ulong FuseDevIocClone = 0x8004E500;

    // statx(2): AT_FDCWD, and STATX_TYPE | STATX_MODE (only the mode is wanted; the call itself is the probe).
    public const int AtFdCwd = -100;
    public const uint StatxTypeAndMode = 0x3;
    public const int StatxStructSize = 256;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nint count);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, ulong request, ref uint argument);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string fileSystemType, ulong flags, string? data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Umount2(string target, int flags);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(int directoryFd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    [LibraryImport("libc", EntryPoint = "getegid")]
    public static partial uint GetEffectiveGroupId();

    /// <summary>errno of the last call, with its text, for messages.</summary>
    public static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
}
