using System.Buffers.Binary;
using BlockDriver.Vhdx;

namespace BlockDriver.Cli.Tests.Support;

/// <summary>Hostile VHDX files for the containment tests (issue 14): a real file made by the library, then patched
/// byte by byte the way an attacker would, with every checksum fixed so that the reader's deeper checks are reached.
/// Offsets are those of MS-VHDX 2.2 and of the library's layout (log at 1 MiB, metadata at 2 MiB, BAT at 3 MiB).</summary>
internal static class CraftedVhdx
{
    private const int MiB = 1 << 20;
    private const long Header1Offset = 64 * 1024;
    private const long Header2Offset = 128 * 1024;
    private const long RegionTable1Offset = 192 * 1024;
    private const long RegionTable2Offset = 256 * 1024;
    private const long LogOffset = MiB;
    private const long MetadataOffset = 2 * MiB;
    private static readonly Guid BatRegion = new("2DC27766-F623-4200-9D64-115E9BFD4A08");
    private static readonly Guid VirtualDiskSize = new("2FA54224-CD1B-4876-B211-5DBED83BF4B8");

    /// <summary>The file of the issue: a 4 MiB dynamic VHDX that claims a 64 TiB disk with 1 MiB blocks, a BAT region
    /// of 513 MiB (the 67 million entries such a disk needs) and a pending log entry whose LastFileOffset says the
    /// file is 600 MiB, so that a reader trusting the log's size reads and allocates a 512 MiB BAT (twice).</summary>
    public static void WriteLogClaimingHugeFile(string path)
    {
        VhdxFile.CreateDynamic(path, 1L << 30, new VhdxCreateOptions { BlockSize = MiB });
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);

        // Metadata (no checksum): Virtual Disk Size = 64 TiB.
        byte[] table = Read(handle, MetadataOffset, 64 * 1024);
        int count = BinaryPrimitives.ReadUInt16LittleEndian(table.AsSpan(10));
        for (int i = 0; i < count; i++)
        {
            Span<byte> entry = table.AsSpan(32 + (i * 32), 32);
            if (new Guid(entry[..16]) == VirtualDiskSize)
            {
                byte[] size = new byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(size, 64UL << 40);
                RandomAccess.Write(handle, size, MetadataOffset + BinaryPrimitives.ReadUInt32LittleEndian(entry[16..]));
            }
        }

        // Both region tables: the BAT region grows to 513 MiB.
        foreach (long offset in new[] { RegionTable1Offset, RegionTable2Offset })
        {
            byte[] regions = Read(handle, offset, 64 * 1024);
            int entries = (int)BinaryPrimitives.ReadUInt32LittleEndian(regions.AsSpan(8));
            for (int i = 0; i < entries; i++)
            {
                Span<byte> entry = regions.AsSpan(16 + (i * 32), 32);
                if (new Guid(entry[..16]) == BatRegion)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(entry[24..], 513u * MiB);
                }
            }

            SetChecksum(regions);
            RandomAccess.Write(handle, regions, offset);
        }

        // Both headers name a log, and the log holds one valid entry without descriptors: flushed 4 MiB (the real
        // size, so not "truncated"), last 600 MiB.
        var logGuid = Guid.NewGuid();
        foreach (long offset in new[] { Header1Offset, Header2Offset })
        {
            byte[] header = Read(handle, offset, 4096);
            logGuid.TryWriteBytes(header.AsSpan(48, 16));
            SetChecksum(header);
            RandomAccess.Write(handle, header, offset);
        }

        byte[] log = new byte[4096];
        BinaryPrimitives.WriteUInt32LittleEndian(log, 0x6567_6F6C); // "loge"
        BinaryPrimitives.WriteUInt32LittleEndian(log.AsSpan(8), 4096); // entry length
        BinaryPrimitives.WriteUInt64LittleEndian(log.AsSpan(16), 1); // sequence
        logGuid.TryWriteBytes(log.AsSpan(32, 16));
        BinaryPrimitives.WriteUInt64LittleEndian(log.AsSpan(48), 4UL * MiB); // FlushedFileOffset
        BinaryPrimitives.WriteUInt64LittleEndian(log.AsSpan(56), 600UL * MiB); // LastFileOffset
        SetChecksum(log);
        RandomAccess.Write(handle, log, LogOffset);
    }

    private static byte[] Read(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long offset, int length)
    {
        byte[] bytes = new byte[length];
        Assert.Equal(length, RandomAccess.Read(handle, bytes, offset));
        return bytes;
    }

    // CRC-32C (Castagnoli, reflected 0x82F63B78) of the whole structure with its field at 4 counted as zero.
    private static void SetChecksum(byte[] structure)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(structure.AsSpan(4), 0);
        uint crc = 0xFFFF_FFFF;
        foreach (byte b in structure)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1;
            }
        }

        BinaryPrimitives.WriteUInt32LittleEndian(structure.AsSpan(4), ~crc);
    }
}
