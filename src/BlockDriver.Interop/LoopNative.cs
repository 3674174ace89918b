namespace BlockDriver.Interop;

/// <summary>The loop-device ioctls and structures of Linux <c>include/uapi/linux/loop.h</c>, and the libc calls
/// open the devices (the calls themselves are <see cref="Libc"/>'s).</summary>
internal static class LoopNative
{
    public const int ORdOnly = 0x0;
    public const int ORdWr = 0x2;
    public const int OCloExec = 0x80000;

    // ioctl numbers: 0x4C is 'L'.
    public const ulong LoopClrFd = 0x4C01;
    public const ulong LoopConfigure = 0x4C0A;
    public const ulong LoopCtlGetFree = 0x4C82;

    // lo_flags.
    public const uint LoFlagsReadOnly = 1;
    public const uint LoFlagsAutoClear = 4;
    public const uint LoFlagsDirectIo = 16;

    // struct loop_config (304 bytes): fd u32 @0, block_size u32 @4, info (struct loop_info64, 232 bytes) @8,
    // __reserved[8] u64 @240. In loop_info64: lo_offset @24, lo_sizelimit @32, lo_flags u32 @52,
    // lo_file_name u8[64] @56 (informational, what losetup shows).
    public const int LoopConfigSize = 304;
    public const int ConfigInfoOffset = 8;
    public const int InfoFlagsOffset = 52;
    public const int InfoFileNameOffset = 56;
    public const int FileNameSize = 64;
}
