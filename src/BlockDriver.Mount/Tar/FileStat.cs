using System.Buffers.Binary;
using BlockDriver.Abstractions;
using BlockDriver.Interop;

namespace BlockDriver.Mount.Tar;

/// <summary>What statx(2) says about one directory entry, without following a symbolic link.</summary>
internal readonly record struct FileStat(uint Mode, int Uid, int Gid, long Size, ulong Inode, uint Links,
    long MtimeSeconds, uint MtimeNanoseconds, long Blocks, uint RdevMajor, uint RdevMinor, uint DevMajor, uint DevMinor)
{
    private const uint BasicStats = 0x7ff;

    public uint Type => Mode & FsNative.SIfMt;

    public bool IsDirectory => Type == FsNative.SIfDir;

    public bool IsRegular => Type == FsNative.SIfReg;

    public bool IsSymlink => Type == FsNative.SIfLnk;

    /// <summary>Stats <paramref name="name"/> in directory <paramref name="dirfd"/>; null when it does not exist.</summary>
    public static FileStat? At(int dirfd, ReadOnlySpan<byte> name) => Statx(dirfd, name, FsNative.AtSymlinkNoFollow);

    /// <summary>Stats what <paramref name="fd"/> itself is (O_PATH is fine; a symbolic link opened with O_NOFOLLOW
    /// is the link).</summary>
    public static FileStat OfFd(int fd) =>
        Statx(fd, ""u8, FsNative.AtSymlinkNoFollow | FsNative.AtEmptyPath) ?? throw new IOException($"statx of fd {fd}: gone.");

    /// <summary>Throws unless the stat succeeded.</summary>
    public static FileStat Require(int dirfd, ReadOnlySpan<byte> name) =>
        At(dirfd, name) ?? throw new BlockDriverException(ErrorKind.NotFound, $"{ByteNames.Display(name)}: no such file.");

    private static unsafe FileStat? Statx(int dirfd, ReadOnlySpan<byte> name, int flags)
    {
        byte* buffer = stackalloc byte[256];
        if (FsNative.Statx(dirfd, name, flags, BasicStats, buffer) != 0)
        {
            int errno = Errno.Last;
            if (errno == Errno.ENOENT)
            {
                return null;
            }

            throw new IOException($"statx {ByteNames.Display(name)}: {Errno.Message(errno)}");
        }

        var s = new ReadOnlySpan<byte>(buffer, 256);
        return new FileStat(
            BinaryPrimitives.ReadUInt16LittleEndian(s[28..]),
            BinaryPrimitives.ReadInt32LittleEndian(s[20..]),
            BinaryPrimitives.ReadInt32LittleEndian(s[24..]),
            BinaryPrimitives.ReadInt64LittleEndian(s[40..]),
            BinaryPrimitives.ReadUInt64LittleEndian(s[32..]),
            BinaryPrimitives.ReadUInt32LittleEndian(s[16..]),
            BinaryPrimitives.ReadInt64LittleEndian(s[112..]),
            BinaryPrimitives.ReadUInt32LittleEndian(s[120..]),
            BinaryPrimitives.ReadInt64LittleEndian(s[48..]),
            BinaryPrimitives.ReadUInt32LittleEndian(s[128..]),
            BinaryPrimitives.ReadUInt32LittleEndian(s[132..]),
            BinaryPrimitives.ReadUInt32LittleEndian(s[136..]),
            BinaryPrimitives.ReadUInt32LittleEndian(s[140..]));
    }
}
