namespace BlockDriver.Interop;

/// <summary>The constants of the FUSE server's libc calls (x86-64/arm64 Linux); the calls themselves are
/// <see cref="Libc"/>'s.</summary>
internal static class FuseNative
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
}
