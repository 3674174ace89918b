using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Vhdx;

/// <summary>The VHDX header (MS-VHDX 2.2.2): one of two 4 KiB copies at 64 KiB and 128 KiB. The current header is
/// the valid one with the larger <see cref="SequenceNumber"/>.</summary>
internal sealed record FileHeader
{
    // "head" read as a little-endian u32.
    public const uint Signature = 0x6461_6568;
    private const int ChecksumOffset = 4;

    public ulong SequenceNumber { get; init; }

    /// <summary>Changes once per writable session, before the first modification.</summary>
    public Guid FileWriteGuid { get; init; }

    /// <summary>Changes before the first user-visible change of a session; a child names its parent by it.</summary>
    public Guid DataWriteGuid { get; init; }

    /// <summary>Zero when the log is empty; otherwise only log entries carrying it are valid.</summary>
    public Guid LogGuid { get; init; }

    public ushort LogVersion { get; init; }

    public ushort Version { get; init; } = 1;

    public uint LogLength { get; init; }

    public ulong LogOffset { get; init; }

    /// <summary>Parses a header; returns null when the signature or CRC-32C is wrong (the copy is then
    /// simply not valid, which is not an error while the other copy is).</summary>
    public static FileHeader? TryParse(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < VhdxConstants.HeaderSize || BinaryPrimitives.ReadUInt32LittleEndian(bytes) != Signature)
        {
            return null;
        }

        ReadOnlySpan<byte> header = bytes[..VhdxConstants.HeaderSize];
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(header[ChecksumOffset..]);
        if (stored != Crc32C.ComputeWithZeroedField(header, ChecksumOffset))
        {
            return null;
        }

        return new FileHeader
        {
            SequenceNumber = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]),
            FileWriteGuid = new Guid(header.Slice(16, 16)),
            DataWriteGuid = new Guid(header.Slice(32, 16)),
            LogGuid = new Guid(header.Slice(48, 16)),
            LogVersion = BinaryPrimitives.ReadUInt16LittleEndian(header[64..]),
            Version = BinaryPrimitives.ReadUInt16LittleEndian(header[66..]),
            LogLength = BinaryPrimitives.ReadUInt32LittleEndian(header[68..]),
            LogOffset = BinaryPrimitives.ReadUInt64LittleEndian(header[72..]),
        };
    }

    /// <summary>Makes <paramref name="changed"/> current on disk (MS-VHDX 2.2.2.1): writes the non-current copy with
    /// sequence + 1 and flushes, then the other copy with sequence + 2 and flushes, so that a torn write always
    /// leaves one valid header and both end up current. Returns the new current header and its slot (0 or 1).</summary>
    public static (FileHeader Header, int Slot) WriteUpdate(SafeFileHandle handle, FileHeader current, int currentSlot, FileHeader changed)
    {
        byte[] buffer = new byte[VhdxConstants.HeaderSize];
        for (int i = 0; i < 2; i++)
        {
            FileHeader next = changed with { SequenceNumber = current.SequenceNumber + 1 };
            int slot = 1 - currentSlot;
            next.Write(buffer);
            RandomAccess.Write(handle, buffer, slot == 0 ? VhdxConstants.Header1Offset : VhdxConstants.Header2Offset);
            RandomAccess.FlushToDisk(handle);
            current = next;
            currentSlot = slot;
        }

        return (current, currentSlot);
    }

    /// <summary>Serializes into a zeroed 4 KiB buffer, checksum included.</summary>
    public void Write(Span<byte> bytes)
    {
        Span<byte> header = bytes[..VhdxConstants.HeaderSize];
        header.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(header, Signature);
        BinaryPrimitives.WriteUInt64LittleEndian(header[8..], SequenceNumber);
        FileWriteGuid.TryWriteBytes(header.Slice(16, 16));
        DataWriteGuid.TryWriteBytes(header.Slice(32, 16));
        LogGuid.TryWriteBytes(header.Slice(48, 16));
        BinaryPrimitives.WriteUInt16LittleEndian(header[64..], LogVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(header[66..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header[68..], LogLength);
        BinaryPrimitives.WriteUInt64LittleEndian(header[72..], LogOffset);
        BinaryPrimitives.WriteUInt32LittleEndian(header[ChecksumOffset..], Crc32C.Compute(header));
    }
}
