using System.Buffers.Binary;

namespace BlockDriver.Vhdx;

/// <summary>The VHDX metadata log (MS-VHDX 2.3): entry serialization, validation and the search for the active
/// sequence to replay. Entries are runs of 4 KiB sectors: descriptor sectors (a 64-byte header then 32-byte
/// descriptors) followed by one data sector per data descriptor.</summary>
internal static class VhdxLog
{
    public const uint EntrySignature = 0x6567_6F6C; // "loge"
    public const uint ZeroSignature = 0x6F72_657A;  // "zero"
    public const uint DescSignature = 0x6373_6564;  // "desc"
    public const uint DataSignature = 0x6174_6164;  // "data"

    private const int Sector = VhdxConstants.LogSectorSize;
    private const int EntryHeaderSize = 64;
    private const int DescriptorSize = 32;

    /// <summary>Descriptor sectors for <paramref name="count"/> descriptors: the first sector holds the header and
    /// 126 descriptors, later ones 128, so ⌈(count + 2) / 128⌉.</summary>
    public static int DescriptorSectors(int count) => (count + 2 + 127) / 128;

    /// <summary>Largest number of 4 KiB pages one entry of at most <paramref name="maxEntryBytes"/> can carry.</summary>
    public static int MaxPagesPerEntry(long maxEntryBytes)
    {
        int sectors = (int)(maxEntryBytes / Sector);
        int pages = sectors - 1;
        while (pages > 0 && DescriptorSectors(pages) + pages > sectors)
        {
            pages--;
        }

        return pages;
    }

    /// <summary>Builds one entry holding full 4 KiB page images to be written at their file offsets.</summary>
    public static byte[] BuildEntry(Guid logGuid, ulong sequence, uint tail, long flushedFileOffset, long lastFileOffset,
        IReadOnlyList<(long FileOffset, byte[] Page)> pages)
    {
        int descriptorSectors = DescriptorSectors(pages.Count);
        byte[] entry = new byte[(descriptorSectors + pages.Count) * Sector];
        Span<byte> header = entry.AsSpan(0, EntryHeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(header, EntrySignature);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], (uint)entry.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], tail);
        BinaryPrimitives.WriteUInt64LittleEndian(header[16..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(header[24..], (uint)pages.Count);
        logGuid.TryWriteBytes(header.Slice(32, 16));
        BinaryPrimitives.WriteUInt64LittleEndian(header[48..], (ulong)flushedFileOffset);
        BinaryPrimitives.WriteUInt64LittleEndian(header[56..], (ulong)lastFileOffset);

        for (int i = 0; i < pages.Count; i++)
        {
            (long fileOffset, byte[] page) = pages[i];
            Span<byte> d = entry.AsSpan(EntryHeaderSize + (i * DescriptorSize), DescriptorSize);
            BinaryPrimitives.WriteUInt32LittleEndian(d, DescSignature);
            d[4..8].Clear();
            page.AsSpan(4092, 4).CopyTo(d[4..]);
            page.AsSpan(0, 8).CopyTo(d[8..]);
            BinaryPrimitives.WriteUInt64LittleEndian(d[16..], (ulong)fileOffset);
            BinaryPrimitives.WriteUInt64LittleEndian(d[24..], sequence);

            Span<byte> data = entry.AsSpan((descriptorSectors + i) * Sector, Sector);
            BinaryPrimitives.WriteUInt32LittleEndian(data, DataSignature);
            BinaryPrimitives.WriteUInt32LittleEndian(data[4..], (uint)(sequence >> 32));
            page.AsSpan(8, 4084).CopyTo(data[8..]);
            BinaryPrimitives.WriteUInt32LittleEndian(data[4092..], (uint)sequence);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(entry.AsSpan(4), Crc32C.Compute(entry));
        return entry;
    }

    /// <summary>Finds the active sequence in <paramref name="log"/> (the whole log area) and returns the updates to
    /// replay in order, or null when no valid sequence exists.</summary>
    /// <remarks>Memory: besides <paramref name="log"/>, one reference per 4 KiB position, one small record per valid
    /// entry header, and the 4 KiB pages of the chosen sequence only, which covers the log at most once; so about
    /// the log's length again, whatever the log holds. Entries are checked in place (no copy per candidate).</remarks>
    /// <exception cref="InvalidDataException">The log is crafted to make the search unreasonably expensive.</exception>
    public static LogReplay? FindActiveSequence(byte[] log, Guid logGuid)
    {
        int positions = log.Length / Sector;
        var entries = new LogEntryInfo?[positions];

        // Checksumming an entry costs its length; real logs hold entries that do not overlap, so the whole scan
        // costs about one log length. A crafted log of overlapping giant entries would cost positions × length:
        // stop at a generous budget instead of spinning.
        long budget = 16L * log.Length;
        for (int i = 0; i < positions; i++)
        {
            entries[i] = TryParse(log, i * Sector, logGuid, ref budget);
        }

        LogEntryInfo? bestHead = null;
        List<LogEntryInfo>? bestSequence = null;
        foreach (LogEntryInfo? candidate in entries)
        {
            if (candidate is null || (bestHead is not null && candidate.Sequence <= bestHead.Sequence))
            {
                continue;
            }

            List<LogEntryInfo>? sequence = SequenceEndingAt(entries, candidate, log.Length);
            if (sequence is not null)
            {
                bestHead = candidate;
                bestSequence = sequence;
            }
        }

        if (bestHead is null || bestSequence is null)
        {
            return null;
        }

        var updates = new List<LogUpdate>();
        foreach (LogEntryInfo entry in bestSequence)
        {
            ReadDescriptors(log, entry.Position, entry.Length, entry.Sequence, entry.Count, updates);
        }

        return new LogReplay(updates, bestHead.FlushedFileOffset, bestHead.LastFileOffset, bestHead.Sequence);
    }

    // Walks from the head's tail forward: every entry on the way must be valid and numbered one above the last,
    // and the walk must arrive exactly at the head.
    private static List<LogEntryInfo>? SequenceEndingAt(LogEntryInfo?[] entries, LogEntryInfo head, int logLength)
    {
        if (head.Tail % Sector != 0 || head.Tail >= logLength)
        {
            return null;
        }

        var sequence = new List<LogEntryInfo>();
        long position = head.Tail;
        long covered = 0;
        while (covered <= logLength)
        {
            LogEntryInfo? entry = entries[position / Sector];
            if (entry is null || (sequence.Count > 0 && entry.Sequence != sequence[^1].Sequence + 1))
            {
                return null;
            }

            sequence.Add(entry);
            if (ReferenceEquals(entry, head))
            {
                return sequence;
            }

            if (entry.Sequence >= head.Sequence)
            {
                return null;
            }

            covered += entry.Length;
            position = (position + entry.Length) % logLength;
        }

        return null;
    }

    // Sector k of the entry at position; an entry may wrap around the end of the log, whole sectors at a time.
    private static ReadOnlySpan<byte> EntrySector(byte[] log, int position, long k) =>
        log.AsSpan((int)((position + (k * Sector)) % log.Length), Sector);

    private static LogEntryInfo? TryParse(byte[] log, int position, Guid logGuid, ref long budget)
    {
        int logLength = log.Length;
        if (BinaryPrimitives.ReadUInt32LittleEndian(log.AsSpan(position)) != EntrySignature)
        {
            return null;
        }

        uint length = BinaryPrimitives.ReadUInt32LittleEndian(log.AsSpan(position + 8));
        uint tail = BinaryPrimitives.ReadUInt32LittleEndian(log.AsSpan(position + 12));
        ulong sequence = BinaryPrimitives.ReadUInt64LittleEndian(log.AsSpan(position + 16));
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(log.AsSpan(position + 24));
        var guid = new Guid(log.AsSpan(position + 32, 16));
        if (length == 0 || length % Sector != 0 || length > logLength || sequence == 0 || guid != logGuid
            || count > length / DescriptorSize)
        {
            return null;
        }

        int descriptorSectors = DescriptorSectors((int)count);
        if (descriptorSectors * (long)Sector > length)
        {
            return null;
        }

        budget -= length;
        if (budget < 0)
        {
            throw new InvalidDataException("the log holds far more overlapping entry headers than a writer produces.");
        }

        // The checksum covers the entry as it lies, in at most two pieces when it wraps (the checksum field is in
        // the first sector, so in the first piece).
        int first = (int)Math.Min(length, logLength - position);
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(log.AsSpan(position + 4));
        if (stored != Crc32C.ComputeWithZeroedField(log.AsSpan(position, first), log.AsSpan(0, (int)length - first), 4))
        {
            return null;
        }

        if (!ReadDescriptors(log, position, length, sequence, count, updates: null))
        {
            return null;
        }

        ReadOnlySpan<byte> header = log.AsSpan(position, EntryHeaderSize);
        return new LogEntryInfo(position, length, tail, sequence, count,
            (long)BinaryPrimitives.ReadUInt64LittleEndian(header[48..]),
            (long)BinaryPrimitives.ReadUInt64LittleEndian(header[56..]));
    }

    // Checks the descriptors of the entry at position (and their data sectors); with updates, also appends what
    // they say, one 4 KiB page per data descriptor. Returns false for an invalid entry.
    private static bool ReadDescriptors(byte[] log, int position, uint length, ulong sequence, uint count, List<LogUpdate>? updates)
    {
        int descriptorSectors = DescriptorSectors((int)count);
        long dataSector = descriptorSectors;
        for (int i = 0; i < count; i++)
        {
            int at = EntryHeaderSize + (i * DescriptorSize);
            ReadOnlySpan<byte> d = EntrySector(log, position, at / Sector).Slice(at % Sector, DescriptorSize);
            uint signature = BinaryPrimitives.ReadUInt32LittleEndian(d);
            long fileOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(d[16..]);
            if (BinaryPrimitives.ReadUInt64LittleEndian(d[24..]) != sequence || fileOffset < 0 || fileOffset % Sector != 0)
            {
                return false;
            }

            if (signature == ZeroSignature)
            {
                long zeroLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(d[8..]);
                if (zeroLength < 0 || zeroLength % Sector != 0)
                {
                    return false;
                }

                updates?.Add(new LogUpdate(fileOffset, zeroLength, null));
            }
            else if (signature == DescSignature)
            {
                if ((dataSector + 1) * Sector > length)
                {
                    return false;
                }

                ReadOnlySpan<byte> data = EntrySector(log, position, dataSector);
                if (BinaryPrimitives.ReadUInt32LittleEndian(data) != DataSignature
                    || BinaryPrimitives.ReadUInt32LittleEndian(data[4..]) != (uint)(sequence >> 32)
                    || BinaryPrimitives.ReadUInt32LittleEndian(data[4092..]) != (uint)sequence)
                {
                    return false;
                }

                if (updates is not null)
                {
                    byte[] page = new byte[Sector];
                    d.Slice(8, 8).CopyTo(page);
                    data.Slice(8, 4084).CopyTo(page.AsSpan(8));
                    d.Slice(4, 4).CopyTo(page.AsSpan(4092));
                    updates.Add(new LogUpdate(fileOffset, Sector, page));
                }

                dataSector++;
            }
            else
            {
                return false;
            }
        }

        return true;
    }

    private sealed record LogEntryInfo(int Position, uint Length, uint Tail, ulong Sequence, uint Count, long FlushedFileOffset,
        long LastFileOffset);
}

/// <summary>One update of a log entry: a 4 KiB page image (<see cref="Data"/>) or, when Data is null, a zeroed
/// range of <see cref="Length"/> bytes.</summary>
internal sealed record LogUpdate(long FileOffset, long Length, byte[]? Data);

/// <summary>The active sequence of a log: its updates in replay order and the head's file-size bounds.</summary>
internal sealed record LogReplay(IReadOnlyList<LogUpdate> Updates, long FlushedFileOffset, long LastFileOffset, ulong HeadSequence);
