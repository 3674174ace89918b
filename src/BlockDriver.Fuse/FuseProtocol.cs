namespace BlockDriver.Fuse;

/// <summary>Numbers and sizes from Linux <c>include/uapi/linux/fuse.h</c> (protocol 7.31, the version this server
/// speaks; every size below is the same up to 7.45). Messages are host byte order (little-endian here).</summary>
internal static class FuseProtocol
{
    public const uint KernelMajor = 7;

    /// <summary>The minor version we answer with when the kernel offers more: 7.31 has max_pages (7.28), the
    /// 64-byte init_out (7.23) and 40-byte read/write requests (7.9); nothing later is needed.</summary>
    public const uint KernelMinor = 31;

    public const ulong RootId = 1;

    // Opcodes (enum fuse_opcode).
    public const uint Lookup = 1;
    public const uint Forget = 2;
    public const uint GetAttr = 3;
    public const uint SetAttr = 4;
    public const uint Symlink = 6;
    public const uint Mknod = 8;
    public const uint Mkdir = 9;
    public const uint Unlink = 10;
    public const uint Rmdir = 11;
    public const uint Rename = 12;
    public const uint Link = 13;
    public const uint Open = 14;
    public const uint Read = 15;
    public const uint Write = 16;
    public const uint StatFs = 17;
    public const uint Release = 18;
    public const uint Fsync = 20;
    public const uint Flush = 25;
    public const uint Init = 26;
    public const uint OpenDir = 27;
    public const uint ReadDir = 28;
    public const uint ReleaseDir = 29;
    public const uint Access = 34;
    public const uint Create = 35;
    public const uint Interrupt = 36;
    public const uint Destroy = 38;
    public const uint BatchForget = 42;
    public const uint Fallocate = 43;
    public const uint Rename2 = 45;
    public const uint Lseek = 46;
    public const uint TmpFile = 51;

    // Header sizes.
    public const int InHeaderSize = 40;
    public const int OutHeaderSize = 16;

    // Body sizes (after the 40-byte in-header / 16-byte out-header).
    public const int EntryOutSize = 128;
    public const int AttrOutSize = 104;
    public const int AttrSize = 88;
    public const int OpenOutSize = 16;
    public const int WriteOutSize = 8;
    public const int StatFsOutSize = 80;
    public const int InitOutSize = 64;
    public const int LseekOutSize = 8;
    public const int WriteInSize = 40;
    public const int DirentHeaderSize = 24;

    /// <summary>A read() on /dev/fuse needs at least this much room (FUSE_MIN_READ_BUFFER).</summary>
    public const int MinReadBuffer = 8192;

    // INIT flags (fuse_init_in/out.flags, low 32 bits).
    public const uint AsyncRead = 1u << 0;
    public const uint BigWrites = 1u << 5;
    public const uint AsyncDio = 1u << 15;
    public const uint ParallelDirOps = 1u << 18;
    public const uint MaxPages = 1u << 22;

    // FOPEN_* flags in fuse_open_out.open_flags.
    public const uint FopenDirectIo = 1;
    public const uint FopenParallelDirectWrites = 64;

    // SETATTR valid bits.
    public const uint FattrMode = 1u << 0;
    public const uint FattrUid = 1u << 1;
    public const uint FattrGid = 1u << 2;
    public const uint FattrSize = 1u << 3;

    // fallocate(2) modes (linux/falloc.h).
    public const uint FallocKeepSize = 0x01;
    public const uint FallocPunchHole = 0x02;
    public const uint FallocZeroRange = 0x10;

    // lseek whence values for FUSE_LSEEK.
    public const uint SeekData = 3;
    public const uint SeekHole = 4;

    // File types for st_mode and dirent.type (type = mode >> 12).
    public const uint SIfDir = 0x4000;
    public const uint SIfReg = 0x8000;
    public const uint DtDir = 4;
    public const uint DtReg = 8;

    // O_ACCMODE and O_RDONLY.
    public const uint OAccMode = 0x3;
    public const uint ORdOnly = 0x0;
}
