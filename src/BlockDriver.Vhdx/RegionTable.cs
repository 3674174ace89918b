using System.Buffers.Binary;

namespace BlockDriver.Vhdx;

/// <summary>The region table (MS-VHDX 2.2.3): 64 KiB at 192 KiB, copied at 256 KiB, CRC-32C over all 64 KiB.</summary>
internal sealed class RegionTable
{
    // "regi" read as a little-endian u32.
    public const uint Signature = 0x6967_6572;
    private const int ChecksumOffset = 4;
    private const int HeaderSize = 16;
    private const int EntrySize = 32;

    public RegionTable(IReadOnlyList<RegionTableEntry> entries)
    {
        Entries = entries;
    }

    public IReadOnlyList<RegionTableEntry> Entries { get; }

    /// <summary>Parses and validates a table: signature, checksum, entry count, alignment, no duplicates, no
    /// unknown required region, both BAT and metadata present.</summary>
    /// <exception cref="VhdxFormatException">The table is not usable.</exception>
    public static RegionTable Parse(ReadOnlySpan<byte> bytes, string path, long fileOffset)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes) != Signature)
        {
            throw new VhdxFormatException(path, "region table", fileOffset, "bad signature (expected \"regi\").");
        }

        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(bytes[ChecksumOffset..]);
        if (stored != Crc32C.ComputeWithZeroedField(bytes[..VhdxConstants.RegionTableSize], ChecksumOffset))
        {
            throw new VhdxFormatException(path, "region table", fileOffset, "CRC-32C mismatch.");
        }

        uint count = BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]);
        if (count > VhdxConstants.MaxRegionEntries)
        {
            throw new VhdxFormatException(path, "region table", fileOffset, $"{count} entries exceeds the limit of {VhdxConstants.MaxRegionEntries}.");
        }

        var entries = new List<RegionTableEntry>((int)count);
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> e = bytes.Slice(HeaderSize + (i * EntrySize), EntrySize);
            var entry = new RegionTableEntry(
                new Guid(e[..16]),
                (long)BinaryPrimitives.ReadUInt64LittleEndian(e[16..]),
                BinaryPrimitives.ReadUInt32LittleEndian(e[24..]),
                (BinaryPrimitives.ReadUInt32LittleEndian(e[28..]) & 1) != 0);
            string where = $"region table entry {i}";
            if (entry.FileOffset < VhdxConstants.HeaderSectionLength || entry.FileOffset % VhdxConstants.Alignment != 0
                || entry.Length == 0 || entry.Length % VhdxConstants.Alignment != 0)
            {
                throw new VhdxFormatException(path, where, fileOffset, $"region at {entry.FileOffset} of {entry.Length} bytes is not 1 MiB aligned past the header section.");
            }

            if (entries.Exists(x => x.Guid == entry.Guid))
            {
                throw new VhdxFormatException(path, where, fileOffset, $"duplicate region {entry.Guid}.");
            }

            bool known = entry.Guid == VhdxGuids.BatRegion || entry.Guid == VhdxGuids.MetadataRegion;
            if (!known && entry.Required)
            {
                throw new VhdxFormatException(path, where, fileOffset, $"unknown required region {entry.Guid}.");
            }

            entries.Add(entry);
        }

        var table = new RegionTable(entries);
        if (table.Find(VhdxGuids.BatRegion) is null || table.Find(VhdxGuids.MetadataRegion) is null)
        {
            throw new VhdxFormatException(path, "region table", fileOffset, "the BAT or the metadata region is missing.");
        }

        return table;
    }

    public RegionTableEntry? Find(Guid guid)
    {
        foreach (RegionTableEntry entry in Entries)
        {
            if (entry.Guid == guid)
            {
                return entry;
            }
        }

        return null;
    }

    /// <summary>Serializes into a 64 KiB buffer, checksum included.</summary>
    public void Write(Span<byte> bytes)
    {
        Span<byte> table = bytes[..VhdxConstants.RegionTableSize];
        table.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(table, Signature);
        BinaryPrimitives.WriteUInt32LittleEndian(table[8..], (uint)Entries.Count);
        for (int i = 0; i < Entries.Count; i++)
        {
            Span<byte> e = table.Slice(HeaderSize + (i * EntrySize), EntrySize);
            RegionTableEntry entry = Entries[i];
            entry.Guid.TryWriteBytes(e[..16]);
            BinaryPrimitives.WriteUInt64LittleEndian(e[16..], (ulong)entry.FileOffset);
            BinaryPrimitives.WriteUInt32LittleEndian(e[24..], entry.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(e[28..], entry.Required ? 1u : 0u);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(table[ChecksumOffset..], Crc32C.Compute(table));
    }
}
