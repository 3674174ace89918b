using System.Buffers.Binary;
using System.Numerics;
using System.Text;
using System.Text.RegularExpressions;
using BlockDriver.Interop;
using BlockDriver.Vhdx.Tests.Support;

namespace BlockDriver.Vhdx.Tests;

/// <summary>Differencing files follow MS-VHDX to the byte. qemu cannot open them, so the test parses the raw file
/// itself, with <see cref="BinaryPrimitives"/> and the offsets, GUID bytes and formulas of the spec (and a CRC-32C of
/// its own), never with the library's parser.</summary>
public sealed partial class LayoutTests : IDisposable
{
    private const int MiB = 1 << 20;

    // GUIDs as their on-disk bytes (MS-VHDX 2.2.3.1, 2.6.2, 2.6.2.6.1).
    private static readonly byte[] BatRegion = [0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08];
    private static readonly byte[] MetadataRegion = [0x06, 0xA2, 0x7C, 0x8B, 0x90, 0x47, 0x9A, 0x4B, 0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E];
    private static readonly byte[] FileParameters = [0x37, 0x67, 0xA1, 0xCA, 0x36, 0xFA, 0x43, 0x4D, 0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B];
    private static readonly byte[] VirtualDiskSize = [0x24, 0x42, 0xA5, 0x2F, 0x1B, 0xCD, 0x76, 0x48, 0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8];
    private static readonly byte[] VirtualDiskId = [0xAB, 0x12, 0xCA, 0xBE, 0xE6, 0xB2, 0x23, 0x45, 0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46];
    private static readonly byte[] LogicalSectorSize = [0x1D, 0xBF, 0x41, 0x81, 0x6F, 0xA9, 0x09, 0x47, 0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F];
    private static readonly byte[] PhysicalSectorSize = [0xC7, 0x48, 0xA3, 0xCD, 0x5D, 0x44, 0x71, 0x44, 0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56];
    private static readonly byte[] ParentLocatorItem = [0x2D, 0x5F, 0xD3, 0xA8, 0x0B, 0xB3, 0x4D, 0x45, 0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C];
    private static readonly byte[] VhdxLocatorType = [0xB7, 0xEF, 0x4A, 0xB0, 0x9E, 0xD1, 0x81, 0x4A, 0xB7, 0x89, 0x25, 0xB8, 0xE9, 0x44, 0x59, 0x13];

    private readonly ScratchDirectory _dir = new("bd-layout");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Reference_CRC_32C_matches_the_published_test_vectors()
    {
        Assert.Equal(0xE306_9283u, Crc32CReference.Compute("123456789"u8));
        Assert.Equal(0x98F9_4189u, Crc32CReference.Compute(new byte[4096]));
    }

    [Theory]
    [InlineData(8L * MiB, 1 * MiB, 512, (3L * MiB) + 512)] // chunk 0
    [InlineData(6L << 30, 1 * MiB, 512, (5L << 30) + (3L * MiB) + (7 * 512))] // chunk 1 of 4 GiB chunks
    [InlineData(6L << 30, 32 * MiB, 512, (5L << 30) + (3L * MiB) + (7 * 512))] // R = 128
    [InlineData(40L << 30, 2 * MiB, 4096, (33L << 30) + (5 * 4096))] // chunk 1 of 32 GiB chunks, R = 16384
    public async Task Differencing_file_with_one_sector_written_matches_the_spec(long size, int blockSize, int sector, long offset)
    {
        string basePath = _dir.File("base.vhdx");
        string childPath = _dir.File("child.vhdx");
        VhdxFile.CreateDynamic(basePath, size, new VhdxCreateOptions { BlockSize = blockSize, LogicalSectorSize = sector });
        await VhdxFile.CreateDifferencingAsync(childPath, basePath, new VhdxCreateOptions { BlockSize = blockSize });
        byte[] data = new byte[sector];
        new Random(42).NextBytes(data);
        await using (VhdxDisk disk = VhdxDisk.Open(childPath))
        {
            await disk.WriteAsync(offset, data);
        }

        // Identity of the parent, from its raw current header and metadata.
        byte[] baseHeader = CurrentHeader(basePath);
        var baseDataWriteGuid = new Guid(baseHeader.AsSpan(32, 16));
        byte[] baseMetadata = ReadRegion(basePath, MetadataRegion);
        byte[] baseDiskId = Item(baseMetadata, VirtualDiskId, out _).ToArray();

        // File type identifier and headers (MS-VHDX 2.2.1, 2.2.2).
        Assert.True("vhdxfile"u8.SequenceEqual(RawVhdx.Read(childPath, 0, 8)));
        byte[] header = CurrentHeader(childPath);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(66)));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(64)));
        Assert.Equal(Guid.Empty, new Guid(header.AsSpan(48, 16))); // closed cleanly: the log is empty
        Assert.NotEqual(baseDataWriteGuid, new Guid(header.AsSpan(32, 16)));
        long logOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(72));
        long logLength = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(68));
        Assert.True(logOffset >= MiB && logOffset % MiB == 0 && logLength > 0 && logLength % MiB == 0, $"log at {logOffset} of {logLength} bytes");

        // Region table (2.2.3): both copies identical, checksummed, BAT and metadata present and required.
        byte[] table = RawVhdx.Read(childPath, RawVhdx.RegionTable1Offset, RawVhdx.RegionTableSize);
        Assert.Equal(table, RawVhdx.Read(childPath, RawVhdx.RegionTable2Offset, RawVhdx.RegionTableSize));
        Assert.True("regi"u8.SequenceEqual(table.AsSpan(0, 4)));
        Assert.Equal(Crc32CReference.ComputeWithZeroedField(table), BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(4)));
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(8)));
        (long batOffset, long batLength) = RegionEntry(table, BatRegion);
        (long metadataOffset, long metadataLength) = RegionEntry(table, MetadataRegion);

        // Metadata (2.6): the five required items, HasParent, and the parent locator.
        byte[] metadata = RawVhdx.Read(childPath, metadataOffset, (int)metadataLength);
        Assert.True("metadata"u8.SequenceEqual(metadata.AsSpan(0, 8)));
        ReadOnlySpan<byte> parameters = Item(metadata, FileParameters, out uint parameterFlags);
        Assert.Equal((uint)blockSize, BinaryPrimitives.ReadUInt32LittleEndian(parameters));
        Assert.Equal(2u, BinaryPrimitives.ReadUInt32LittleEndian(parameters[4..]) & 3); // HasParent, not LeaveBlockAllocated
        Assert.Equal(4u, parameterFlags);
        Assert.Equal((ulong)size, BinaryPrimitives.ReadUInt64LittleEndian(Item(metadata, VirtualDiskSize, out uint sizeFlags)));
        Assert.Equal(6u, sizeFlags);
        Assert.Equal(baseDiskId, Item(metadata, VirtualDiskId, out _).ToArray()); // IsVirtualDisk: copied from the parent
        Assert.Equal((uint)sector, BinaryPrimitives.ReadUInt32LittleEndian(Item(metadata, LogicalSectorSize, out _)));
        Assert.Equal(4096u, BinaryPrimitives.ReadUInt32LittleEndian(Item(metadata, PhysicalSectorSize, out _)));
        Dictionary<string, string> locator = ParseLocator(Item(metadata, ParentLocatorItem, out uint locatorFlags));
        Assert.Equal(4u, locatorFlags & 4); // IsRequired
        Assert.Matches(LowercaseBracedGuid(), locator["parent_linkage"]);
        Assert.Equal(baseDataWriteGuid.ToString("B"), locator["parent_linkage"]);
        string relative = locator["relative_path"];
        Assert.DoesNotContain('/', relative);
        Assert.Equal(basePath, Path.GetFullPath(Path.Combine(_dir.FullName, relative.Replace('\\', '/'))));

        // BAT (2.5): R = 2^23 × sector / blockSize; block k at k + ⌊k/R⌋, chunk c's bitmap at c(R+1) + R.
        long chunkRatio = (1L << 23) * sector / blockSize;
        long payloadBlocks = (size + blockSize - 1) / blockSize;
        long bitmapBlocks = (payloadBlocks + chunkRatio - 1) / chunkRatio;
        long entries = bitmapBlocks * (chunkRatio + 1);
        Assert.True(batLength >= entries * 8, $"BAT region of {batLength} bytes for {entries} entries");
        byte[] bat = RawVhdx.Read(childPath, batOffset, (int)(entries * 8));
        long block = offset / blockSize;
        long chunk = block / chunkRatio;
        long payloadIndex = block + (block / chunkRatio);
        long bitmapIndex = (chunk * (chunkRatio + 1)) + chunkRatio;
        ulong payloadEntry = BinaryPrimitives.ReadUInt64LittleEndian(bat.AsSpan((int)(payloadIndex * 8)));
        ulong bitmapEntry = BinaryPrimitives.ReadUInt64LittleEndian(bat.AsSpan((int)(bitmapIndex * 8)));
        Assert.Equal(7UL, payloadEntry & 7); // PAYLOAD_BLOCK_PARTIALLY_PRESENT
        Assert.Equal(6UL, bitmapEntry & 7); // SB_BLOCK_PRESENT
        Assert.Equal(0UL, payloadEntry & 0xF_FFF8); // reserved bits
        Assert.Equal(0UL, bitmapEntry & 0xF_FFF8);
        for (long i = 0; i < entries; i++)
        {
            if (i != payloadIndex && i != bitmapIndex)
            {
                Assert.True(BinaryPrimitives.ReadUInt64LittleEndian(bat.AsSpan((int)(i * 8))) == 0, $"BAT entry {i} is not NOT_PRESENT");
            }
        }

        long blockOffset = (long)(payloadEntry & ~0xF_FFFFUL);
        long bitmapOffset = (long)(bitmapEntry & ~0xF_FFFFUL);
        long fileLength = new FileInfo(childPath).Length;
        Assert.True(blockOffset + blockSize <= fileLength, $"payload block at {blockOffset} passes the end of the {fileLength}-byte file");
        Assert.True(bitmapOffset + MiB <= fileLength, $"sector bitmap at {bitmapOffset} passes the end of the {fileLength}-byte file");
        AssertNoOverlap(
            ("header section", 0, MiB),
            ("log", logOffset, logLength),
            ("BAT", batOffset, batLength),
            ("metadata", metadataOffset, metadataLength),
            ("payload block", blockOffset, blockSize),
            ("sector bitmap", bitmapOffset, MiB));

        // Sector bitmap (2.5.1.2): bit n of chunk c is logical sector c·2^23 + n, byte n/8, bit n%8, LSB first.
        byte[] bitmap = RawVhdx.Read(childPath, bitmapOffset, MiB);
        long n = (offset / sector) - (chunk << 23);
        Assert.True((bitmap[n / 8] & (1 << (int)(n % 8))) != 0, $"bit {n} of the sector bitmap is clear");
        Assert.True(n == 0 || (bitmap[(n - 1) / 8] & (1 << (int)((n - 1) % 8))) == 0, $"bit {n - 1} (the sector before) is set");
        Assert.True((bitmap[(n + 1) / 8] & (1 << (int)((n + 1) % 8))) == 0, $"bit {n + 1} (the sector after) is set");
        long setBits = 0;
        for (int i = 0; i < bitmap.Length; i += 8)
        {
            setBits += BitOperations.PopCount(BinaryPrimitives.ReadUInt64LittleEndian(bitmap.AsSpan(i)));
        }

        Assert.Equal(1, setBits);

        // The data sits at its place in the payload block.
        Assert.Equal(data, RawVhdx.Read(childPath, blockOffset + (offset % blockSize), sector));
    }

    [Theory]
    [InlineData(1 * MiB)]
    [InlineData(2 * MiB)]
    [InlineData(32 * MiB)]
    public async Task A_4_KiB_write_to_an_empty_child_costs_far_less_than_a_block(int blockSize)
    {
        string basePath = _dir.File("base.vhdx");
        string childPath = _dir.File("child.vhdx");
        VhdxFile.CreateDynamic(basePath, 256L * MiB, new VhdxCreateOptions { BlockSize = blockSize });
        await using (VhdxDisk disk = VhdxDisk.Open(basePath))
        {
            await disk.WriteAsync(0, new byte[blockSize].Select((_, i) => (byte)i).ToArray());
        }

        await VhdxFile.CreateDifferencingAsync(childPath, basePath);
        long before = SparseFile.AllocatedBytes(childPath);
        await using (VhdxDisk disk = VhdxDisk.Open(childPath))
        {
            await disk.WriteAsync(blockSize / 2, new byte[4096].Select(_ => (byte)0x5A).ToArray());
        }

        long after = SparseFile.AllocatedBytes(childPath);
        Assert.True(after - before < 256 * 1024, $"a 4 KiB write grew the child from {before} to {after} bytes on disk");

        await using (VhdxDisk disk = VhdxDisk.Open(childPath, new VhdxOpenOptions { ReadOnly = true }))
        {
            byte[] read = new byte[8192];
            await disk.ReadAsync((blockSize / 2) - 4096, read);
            Assert.Equal(new byte[4096].Select((_, i) => (byte)((blockSize / 2) - 4096 + i)), read.Take(4096));
            Assert.True(read.Skip(4096).All(b => b == 0x5A), "the written sectors do not read back");
        }
    }

    private static byte[] CurrentHeader(string path)
    {
        byte[] h1 = RawVhdx.Read(path, RawVhdx.Header1Offset, RawVhdx.HeaderSize);
        byte[] h2 = RawVhdx.Read(path, RawVhdx.Header2Offset, RawVhdx.HeaderSize);
        foreach (byte[] h in new[] { h1, h2 })
        {
            Assert.True("head"u8.SequenceEqual(h.AsSpan(0, 4)), "header signature");
            Assert.Equal(Crc32CReference.ComputeWithZeroedField(h), BinaryPrimitives.ReadUInt32LittleEndian(h.AsSpan(4)));
        }

        ulong s1 = BinaryPrimitives.ReadUInt64LittleEndian(h1.AsSpan(8));
        ulong s2 = BinaryPrimitives.ReadUInt64LittleEndian(h2.AsSpan(8));
        Assert.NotEqual(s1, s2);
        return s1 > s2 ? h1 : h2;
    }

    private static (long Offset, long Length) RegionEntry(byte[] table, byte[] guid)
    {
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(8));
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> entry = table.AsSpan(16 + (i * 32), 32);
            if (entry[..16].SequenceEqual(guid))
            {
                long offset = (long)BinaryPrimitives.ReadUInt64LittleEndian(entry[16..]);
                long length = BinaryPrimitives.ReadUInt32LittleEndian(entry[24..]);
                Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(entry[28..]) & 1); // Required
                Assert.True(offset >= MiB && offset % MiB == 0 && length > 0 && length % MiB == 0, $"region at {offset} of {length} bytes");
                return (offset, length);
            }
        }

        Assert.Fail($"region {Convert.ToHexString(guid)} is not in the region table");
        return default;
    }

    private static byte[] ReadRegion(string path, byte[] guid)
    {
        (long offset, long length) = RegionEntry(RawVhdx.Read(path, RawVhdx.RegionTable1Offset, RawVhdx.RegionTableSize), guid);
        return RawVhdx.Read(path, offset, (int)length);
    }

    // The item's bytes; items lie at 64 KiB or later in the region (2.6.1.2).
    private static ReadOnlySpan<byte> Item(byte[] metadata, byte[] guid, out uint flags)
    {
        int count = BinaryPrimitives.ReadUInt16LittleEndian(metadata.AsSpan(10));
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> entry = metadata.AsSpan(32 + (i * 32), 32);
            if (entry[..16].SequenceEqual(guid))
            {
                int offset = (int)BinaryPrimitives.ReadUInt32LittleEndian(entry[16..]);
                int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(entry[20..]);
                flags = BinaryPrimitives.ReadUInt32LittleEndian(entry[24..]);
                Assert.True(offset >= 64 * 1024 && offset + length <= metadata.Length, $"item {Convert.ToHexString(guid)} at {offset} of {length} bytes");
                return metadata.AsSpan(offset, length);
            }
        }

        Assert.Fail($"metadata item {Convert.ToHexString(guid)} is missing");
        flags = 0;
        return default;
    }

    // 2.6.2.6: a 20-byte header (type GUID, reserved, count), 12-byte entries, UTF-16LE strings without NULs.
    private static Dictionary<string, string> ParseLocator(ReadOnlySpan<byte> item)
    {
        Assert.True(item[..16].SequenceEqual(VhdxLocatorType), $"locator type {Convert.ToHexString(item[..16])}");
        Assert.Equal(0, BinaryPrimitives.ReadUInt16LittleEndian(item[16..]));
        int count = BinaryPrimitives.ReadUInt16LittleEndian(item[18..]);
        var entries = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> entry = item.Slice(20 + (i * 12), 12);
            string key = Utf16(item, BinaryPrimitives.ReadUInt32LittleEndian(entry), BinaryPrimitives.ReadUInt16LittleEndian(entry[8..]));
            string value = Utf16(item, BinaryPrimitives.ReadUInt32LittleEndian(entry[4..]), BinaryPrimitives.ReadUInt16LittleEndian(entry[10..]));
            Assert.True(entries.TryAdd(key, value), $"duplicate key {key}");
        }

        return entries;
    }

    private static string Utf16(ReadOnlySpan<byte> item, uint offset, ushort length)
    {
        Assert.True(offset > 0 && length > 0 && length % 2 == 0 && offset + length <= item.Length, $"string at {offset} of {length} bytes");
        string text = Encoding.Unicode.GetString(item.Slice((int)offset, length));
        Assert.DoesNotContain('\0', text);
        return text;
    }

    private static void AssertNoOverlap(params (string What, long Offset, long Length)[] objects)
    {
        foreach ((string what, long offset, long length) in objects)
        {
            Assert.True(offset % MiB == 0, $"{what} at {offset} is not 1 MiB aligned");
            foreach ((string other, long otherOffset, long otherLength) in objects)
            {
                Assert.True(what == other || offset + length <= otherOffset || otherOffset + otherLength <= offset, $"{what} overlaps {other}");
            }
        }
    }

    [GeneratedRegex("^\\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\}$")]
    private static partial Regex LowercaseBracedGuid();
}
