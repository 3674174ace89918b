using System.Buffers.Binary;
using System.Security.Cryptography;

namespace BlockDriver.Vhdx.Tests.Support;

/// <summary>Reads and patches VHDX files byte by byte, with offsets and GUIDs taken from MS-VHDX rather than from
/// the library, so that tests can craft malformed files and check layouts independently of the parser.</summary>
/// <remarks>Every method opens and closes the file itself; none keeps a handle.</remarks>
internal static class RawVhdx
{
    public const long MiB = 1 << 20;
    public const long Header1Offset = 64 * 1024;
    public const long Header2Offset = 128 * 1024;
    public const long RegionTable1Offset = 192 * 1024;
    public const long RegionTable2Offset = 256 * 1024;
    public const int HeaderSize = 4096;
    public const int RegionTableSize = 64 * 1024;

    // Metadata item flags (MS-VHDX 2.6.1.2).
    public const uint IsUser = 1;
    public const uint IsVirtualDisk = 2;
    public const uint IsRequired = 4;

    // Payload and sector-bitmap states (MS-VHDX 2.5.1).
    public const int NotPresent = 0;
    public const int Zero = 2;
    public const int FullyPresent = 6;
    public const int PartiallyPresent = 7;
    public const int BitmapPresent = 6;

    public static readonly Guid BatRegion = new("2DC27766-F623-4200-9D64-115E9BFD4A08");
    public static readonly Guid MetadataRegion = new("8B7CA206-4790-4B9A-B8FE-575F050F886E");
    public static readonly Guid FileParameters = new("CAA16737-FA36-4D43-B3B6-33F0AA44E76B");
    public static readonly Guid VirtualDiskSize = new("2FA54224-CD1B-4876-B211-5DBED83BF4B8");
    public static readonly Guid VirtualDiskId = new("BECA12AB-B2E6-4523-93EF-C309E000C746");
    public static readonly Guid LogicalSectorSize = new("8141BF1D-A96F-4709-BA47-F233A8FAAB5F");
    public static readonly Guid PhysicalSectorSize = new("CDA348C7-445D-4471-9CC9-E9885251C556");
    public static readonly Guid ParentLocator = new("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C");

    public static byte[] Read(string path, long offset, int length)
    {
        byte[] bytes = new byte[length];
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        int done = 0;
        while (done < length)
        {
            int n = RandomAccess.Read(handle, bytes.AsSpan(done), offset + done);
            if (n == 0)
            {
                break;
            }

            done += n;
        }

        return bytes;
    }

    public static void Write(string path, long offset, ReadOnlySpan<byte> bytes)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        RandomAccess.Write(handle, bytes, offset);
    }

    /// <summary>Read-modify-write of [offset, offset + length).</summary>
    public static void Edit(string path, long offset, int length, Action<byte[]> edit)
    {
        byte[] bytes = Read(path, offset, length);
        edit(bytes);
        Write(path, offset, bytes);
    }

    public static void Truncate(string path, long length)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        RandomAccess.SetLength(handle, length);
    }

    public static string Sha256(string path)
    {
        using FileStream stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream));
    }

    /// <summary>SHA-256 of every file under <paramref name="directory"/>, by relative path, as one comparable string.</summary>
    public static string HashDirectory(string directory) =>
        string.Join('\n', Directory.GetFiles(directory, "*", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal)
            .Select(f => $"{Path.GetRelativePath(directory, f)} {new FileInfo(f).Length} {Sha256(f)}"));

    public static void SetChecksum(Span<byte> structure, int fieldOffset = 4) =>
        BinaryPrimitives.WriteUInt32LittleEndian(structure[fieldOffset..], Crc32CReference.ComputeWithZeroedField(structure, fieldOffset));

    /// <summary>Edits header copy <paramref name="slot"/> (0 at 64 KiB, 1 at 128 KiB) and, unless told not to,
    /// recomputes its CRC-32C so that only the edit makes it wrong.</summary>
    public static void EditHeader(string path, int slot, Action<byte[]> edit, bool fixChecksum = true) =>
        Edit(path, slot == 0 ? Header1Offset : Header2Offset, HeaderSize, bytes =>
        {
            edit(bytes);
            if (fixChecksum)
            {
                SetChecksum(bytes);
            }
        });

    /// <summary>Applies the same edit to both region-table copies (or only the first) and fixes their checksums.</summary>
    public static void EditRegionTables(string path, Action<byte[]> edit, bool fixChecksum = true, bool bothCopies = true)
    {
        foreach (long offset in bothCopies ? new[] { RegionTable1Offset, RegionTable2Offset } : [RegionTable1Offset])
        {
            Edit(path, offset, RegionTableSize, bytes =>
            {
                edit(bytes);
                if (fixChecksum)
                {
                    SetChecksum(bytes);
                }
            });
        }
    }

    /// <summary>Offset inside a region table of the entry for <paramref name="region"/>.</summary>
    public static int RegionEntryOffset(ReadOnlySpan<byte> table, Guid region)
    {
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(table[8..]);
        for (int i = 0; i < count; i++)
        {
            int at = 16 + (i * 32);
            if (new Guid(table.Slice(at, 16)) == region)
            {
                return at;
            }
        }

        throw new InvalidOperationException($"region {region} is not in the table.");
    }

    /// <summary>File offset and length of a region, from the first region table.</summary>
    public static (long Offset, int Length) Region(string path, Guid region)
    {
        byte[] table = Read(path, RegionTable1Offset, RegionTableSize);
        int at = RegionEntryOffset(table, region);
        return ((long)BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(at + 16)), (int)BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(at + 24)));
    }

    /// <summary>Read-modify-write of the whole metadata region (it has no checksum).</summary>
    public static void EditMetadata(string path, Action<byte[]> edit)
    {
        (long offset, int length) = Region(path, MetadataRegion);
        Edit(path, offset, length, edit);
    }

    /// <summary>Where a metadata item is: its table entry's offset in the region, and the item's offset and length.</summary>
    public static (int Entry, int Offset, int Length) MetadataItem(ReadOnlySpan<byte> region, Guid item)
    {
        int count = BinaryPrimitives.ReadUInt16LittleEndian(region[10..]);
        for (int i = 0; i < count; i++)
        {
            int at = 32 + (i * 32);
            if (new Guid(region.Slice(at, 16)) == item)
            {
                return (at, (int)BinaryPrimitives.ReadUInt32LittleEndian(region[(at + 16)..]), (int)BinaryPrimitives.ReadUInt32LittleEndian(region[(at + 20)..]));
            }
        }

        throw new InvalidOperationException($"metadata item {item} is not in the table.");
    }

    /// <summary>Overwrites the value of a metadata item in place.</summary>
    public static void SetMetadataItem(string path, Guid item, ReadOnlySpan<byte> value)
    {
        byte[] copy = value.ToArray();
        EditMetadata(path, region =>
        {
            (_, int offset, int length) = MetadataItem(region, item);
            Assert.True(copy.Length <= length, "the new value must fit the item");
            copy.CopyTo(region.AsSpan(offset));
        });
    }

    public static ulong BatEntry(int state, long fileOffset) => (ulong)fileOffset | (uint)state;

    public static ulong ReadBatEntry(string path, long index)
    {
        (long offset, _) = Region(path, BatRegion);
        return BinaryPrimitives.ReadUInt64LittleEndian(Read(path, offset + (index * 8), 8));
    }

    public static void WriteBatEntry(string path, long index, ulong entry)
    {
        (long offset, _) = Region(path, BatRegion);
        byte[] bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, entry);
        Write(path, offset + (index * 8), bytes);
    }
}
