using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Interop;

/// <summary>Linux sparse-file primitives .NET does not expose: hole punching (fallocate), SEEK_DATA/SEEK_HOLE
/// and allocated size (statx stx_blocks). Every method throws <see cref="IOException"/> with errno on failure.</summary>
public static unsafe class SparseFile
{
    // lseek(2) whence values, from linux/fs.h.
    private const int SeekData = 3;
    private const int SeekHole = 4;

    // statx(2): AT_FDCWD and the STATX_BLOCKS mask bit; stx_blocks sits at byte 48 of struct statx.
    private const int AtFdCwd = -100;
    private const uint StatxBlocks = 0x400;
    private const int StatxBlocksOffset = 48;
    private const int StatxStructSize = 256;
    private const uint StatxType = 0x1;
    private const int StatxModeOffset = 28;
    private const int SIfMt = 0xF000;
    private const int SIfReg = 0x8000;
    private const int StatxDevMajorOffset = 136;
    private const int StatxDevMinorOffset = 140;
    private const int AtSymlinkNoFollow = 0x100;

    /// <summary>Deallocates [offset, offset + length) of the file; the range then reads as zeroes and the file
    /// length is unchanged. Partial file-system blocks at either end are zeroed by the kernel.</summary>
    public static void PunchHole(SafeFileHandle file, long offset, long length)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (length <= 0)
        {
            return;
        }

        if (Libc.Fallocate(file, Libc.FallocFlPunchHole | Libc.FallocFlKeepSize, offset, length) != 0)
        {
            throw Failure("fallocate(PUNCH_HOLE)", offset, length);
        }
    }

    /// <summary>Returns the first offset at or after <paramref name="offset"/> that holds data, or -1 when the
    /// rest of the file is a hole.</summary>
    public static long NextData(SafeFileHandle file, long offset) => Seek(file, offset, SeekData);

    /// <summary>Returns the first offset at or after <paramref name="offset"/> that is a hole (the file length
    /// counts as one), or -1 when <paramref name="offset"/> is at or past the end.</summary>
    public static long NextHole(SafeFileHandle file, long offset) => Seek(file, offset, SeekHole);

    /// <summary>Bytes the file occupies on disk: st_blocks × 512.</summary>
    public static long AllocatedBytes(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Span<byte> buffer = stackalloc byte[StatxStructSize];
        if (Statx(path, 0, StatxBlocks, buffer) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"statx({path}) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");
        }

        return checked((long)BitConverter.ToUInt64(buffer[StatxBlocksOffset..]) * 512);
    }

    /// <summary>The device (st_dev, as major × 2^32 + minor) of the file system holding <paramref name="path"/>,
    /// not following a final symbolic link: a directory with another device than its parent is a mount point, which
    /// a walk that stays on one file system (<c>du -x</c>) does not enter.</summary>
    public static ulong DeviceOf(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Span<byte> buffer = stackalloc byte[StatxStructSize];
        if (Statx(path, AtSymlinkNoFollow, StatxType, buffer) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"statx({path}) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");
        }

        // stx_dev_major and stx_dev_minor are filled whatever the mask asks for.
        return ((ulong)BitConverter.ToUInt32(buffer[StatxDevMajorOffset..]) << 32) | BitConverter.ToUInt32(buffer[StatxDevMinorOffset..]);
    }

    /// <summary>True when <paramref name="path"/> (after symlinks) is a regular file: not a directory, FIFO, socket
    /// or device. Opening a FIFO blocks until a writer appears, so callers that open paths read from untrusted data
    /// check first.</summary>
    public static bool IsRegularFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Span<byte> buffer = stackalloc byte[StatxStructSize];
        if (Statx(path, 0, StatxType, buffer) != 0)
        {
            return false;
        }

        ushort mode = BitConverter.ToUInt16(buffer[StatxModeOffset..]);
        return (mode & SIfMt) == SIfReg;
    }

    private static long Seek(SafeFileHandle file, long offset, int whence)
    {
        ArgumentNullException.ThrowIfNull(file);
        long result = Libc.Lseek(file, offset, whence);
        if (result >= 0)
        {
            return result;
        }

        int errno = Marshal.GetLastPInvokeError();
        if (errno == Errno.ENXIO)
        {
            return -1;
        }

        throw new IOException($"lseek({offset}, {(whence == SeekData ? "SEEK_DATA" : "SEEK_HOLE")}) failed: " +
                              $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");
    }

    private static IOException Failure(string call, long offset, long length)
    {
        int errno = Marshal.GetLastPInvokeError();
        return new IOException($"{call} at {offset} +{length} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");
    }

    private static int Statx(string path, int flags, uint mask, Span<byte> buffer)
    {
        fixed (byte* b = buffer)
        {
            return Libc.Statx(AtFdCwd, path, flags, mask, b);
        }
    }
}
