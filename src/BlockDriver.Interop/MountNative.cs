namespace BlockDriver.Interop;

/// <summary>The constants of the layer mounter's calls: mount(2) and umount2(2) flags, the freeze ioctls. The calls
/// themselves are <see cref="Libc"/>'s.</summary>
internal static class MountNative
{
    // include/uapi/linux/mount.h.
    public const ulong MsRdOnly = 1;
    public const ulong MsNoSuid = 2;
    public const ulong MsNoDev = 4;
    public const int MntDetach = 2;

    // include/uapi/linux/fs.h: FIFREEZE _IOWR('X', 119, int), FITHAW _IOWR('X', 120, int).
    public const ulong FiFreeze = 0xC0045877;
    public const ulong FiThaw = 0xC0045878;
}
