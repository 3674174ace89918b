using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using BlockDriver.Abstractions;
using BlockDriver.Interop;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Vhdx;

/// <summary>Opens a VHDX file: picks the current header, replays the log, parses the region table, metadata and
/// BAT, and validates them (MS-VHDX checklist: alignment, bounds, overlaps, states) before anything trusts them.
/// Every allocation is bounded by the file's real size, so a hostile file cannot make it allocate at will.</summary>
internal static class VhdxReader
{
    // Logs and metadata regions beyond these sizes are refused as absurd: real files use 1 MiB for each.
    private const long MaxLogLength = 256L * VhdxConstants.MiB;
    private const long MaxMetadataRegionLength = 64L * VhdxConstants.MiB;

    // The largest file a VHDX can need: a 64 TiB disk plus its metadata, generously.
    private const long MaxFileLength = VhdxConstants.MaxVirtualDiskSize + (64L * 1024 * VhdxConstants.MiB);

    /// <summary>Everything a <see cref="VhdxFile"/> starts from.</summary>
    internal sealed record State(FileHeader Header, int HeaderSlot, VhdxMetadata Metadata, RegionTable Regions,
        VhdxGeometry Geometry, ulong[] Bat, long BatOffset, long FileLength, List<LogUpdate>? Overlay, bool ReplayedLog)
    {
        /// <summary>The log sequence the overlay came from, to apply in place on a writable open.</summary>
        public LogReplay? Replay { get; init; }

        /// <summary>One past the last byte any structure may use (full blocks); new blocks go at or after it.</summary>
        public long AllocatedEnd { get; init; }
    }

    /// <summary>Parses and validates the whole file without changing it; then, for a writable open, starts the
    /// session: a new FileWriteGuid, the pending log applied in place, the log marked empty. A file that fails
    /// validation is therefore never touched, not even by a writable open.</summary>
    public static State Read(string path, SafeFileHandle handle, bool readOnly)
    {
        State state = Parse(path, handle);
        if (readOnly)
        {
            return state;
        }

        FileHeader header = state.Header;
        int slot = state.HeaderSlot;
        if (header.LogLength == 0)
        {
            throw new BlockDriverException(ErrorKind.Unavailable, $"{path}: the file has no log, so it cannot be written safely; open it read-only.");
        }

        if (state.Replay is { } replay && replay.LastFileOffset > RandomAccess.GetLength(handle))
        {
            // Grow the file to the size the log describes first: it changes no byte, and a size the host file
            // system cannot hold is then refused before the headers change.
            try
            {
                RandomAccess.SetLength(handle, replay.LastFileOffset);
            }
            catch (Exception e) when (e is IOException or ArgumentOutOfRangeException)
            {
                throw new BlockDriverException(ErrorKind.Unavailable, $"{path}: the log needs the file to grow to {replay.LastFileOffset} bytes, which the host file system refuses: {e.Message}", e);
            }
        }

        // MS-VHDX 2.2.2: a new FileWriteGuid before any other change of the session, log replay included.
        (header, slot) = FileHeader.WriteUpdate(handle, header, slot, header with { FileWriteGuid = Guid.NewGuid() });
        if (header.LogGuid == Guid.Empty)
        {
            return state with { Header = header, HeaderSlot = slot };
        }

        if (state.Replay is not null)
        {
            try
            {
                Apply(handle, state.Replay);
            }
            catch (Exception e) when (e is IOException or ArgumentOutOfRangeException)
            {
                // .NET reports EFBIG (a file larger than the host file system allows) as ArgumentOutOfRange.
                throw new BlockDriverException(ErrorKind.Unavailable, $"{path}: replaying the log failed: {e.Message}", e);
            }
        }

        (header, slot) = FileHeader.WriteUpdate(handle, header, slot, header with { LogGuid = Guid.Empty });
        if (state.Replay is null)
        {
            return state with { Header = header, HeaderSlot = slot };
        }

        // The structures are now in place on disk; read them again without the overlay.
        return Parse(path, handle) with { ReplayedLog = true };
    }

    private static State Parse(string path, SafeFileHandle handle)
    {
        long fileLength = RandomAccess.GetLength(handle);
        if (fileLength < VhdxConstants.HeaderSectionLength)
        {
            throw new VhdxFormatException(path, "file", -1, $"{fileLength} bytes is shorter than the 1 MiB header section (truncated, or not a VHDX file).");
        }

        byte[] headerSection = ReadExactly(handle, 0, (int)VhdxConstants.HeaderSectionLength);
        if (!headerSection.AsSpan(0, 8).SequenceEqual("vhdxfile"u8))
        {
            throw new VhdxFormatException(path, "file type identifier", 0, "signature is not \"vhdxfile\".");
        }

        (FileHeader header, int slot) = ChooseHeader(path, headerSection);
        if (header.Version != 1)
        {
            throw new VhdxFormatException(path, "header", slot == 0 ? VhdxConstants.Header1Offset : VhdxConstants.Header2Offset, $"unsupported version {header.Version}.");
        }

        if (header.LogGuid != Guid.Empty && header.LogVersion != 0)
        {
            throw new VhdxFormatException(path, "header", -1, $"unsupported log version {header.LogVersion}.");
        }

        long logOffset = (long)Math.Min(header.LogOffset, long.MaxValue);
        long logLength = header.LogLength;
        if (logOffset % VhdxConstants.Alignment != 0 || logLength % VhdxConstants.Alignment != 0
            || (logLength > 0 && logOffset < VhdxConstants.HeaderSectionLength) || logLength > MaxLogLength)
        {
            throw new VhdxFormatException(path, "header", -1, $"log at {logOffset} of {logLength} bytes is not 1 MiB aligned past the header section, or is absurdly large.");
        }

        List<LogUpdate>? overlay = null;
        LogReplay? pending = null;
        if (logLength > 0 && logOffset > fileLength - logLength)
        {
            // Besides being unreadable, a log past the end would be handed out as payload space by a writer.
            throw new VhdxFormatException(path, "header", -1, $"the log lies past the end of the file (log at {logOffset} of {logLength} bytes, file of {fileLength} bytes).");
        }

        if (header.LogGuid != Guid.Empty && logLength > 0)
        {
            // At most 256 MiB and inside the file (both checked above): the log buffer is bounded by the file.
            byte[] log = ReadExactly(handle, logOffset, (int)logLength);
            LogReplay? replay;
            try
            {
                replay = VhdxLog.FindActiveSequence(log, header.LogGuid);
            }
            catch (InvalidDataException e)
            {
                throw new VhdxFormatException(path, "log", logOffset, e.Message);
            }

            // No valid sequence although LogGuid is set: a writer stopped after starting its session and before
            // its first entry was complete. Nothing it logged was applied, so there is nothing to replay (qemu
            // treats this the same way; the spec's stricter reading would refuse a file nothing is wrong with).
            if (replay is not null)
            {
                ValidateReplay(path, logOffset, replay);
                if (fileLength < replay.FlushedFileOffset)
                {
                    throw new VhdxFormatException(path, "log", logOffset, $"the file is {fileLength} bytes but the log says {replay.FlushedFileOffset} bytes were stable: it was truncated.");
                }

                // The log's LastFileOffset is the size a writable open grows the file to; it is not used to bound
                // anything here. Every structure must lie inside the file as it is (fstat): writers extend the file
                // and flush it before they log metadata that points past the old end (MS-VHDX 2.3.1.1,
                // FlushedFileOffset), so only a crafted log claims more, and a claimed size must not let a 3 MiB
                // file make the reader allocate a 64 TiB disk's BAT.
                overlay = [.. replay.Updates];
                pending = replay;
            }
        }

        RegionTable regions = ReadRegionTable(path, headerSection, overlay);
        RegionTableEntry batRegion = regions.Find(VhdxGuids.BatRegion)!.Value;
        RegionTableEntry metadataRegion = regions.Find(VhdxGuids.MetadataRegion)!.Value;
        foreach (RegionTableEntry region in regions.Entries)
        {
            if (region.FileOffset > fileLength - region.Length)
            {
                throw new VhdxFormatException(path, "region table", VhdxConstants.RegionTable1Offset, $"region {region.Guid} at {region.FileOffset} of {region.Length} bytes lies past the end of the {fileLength}-byte file.");
            }
        }

        if (metadataRegion.Length > MaxMetadataRegionLength)
        {
            throw new VhdxFormatException(path, "region table", VhdxConstants.RegionTable1Offset, $"metadata region of {metadataRegion.Length} bytes is absurdly large.");
        }

        byte[] metadataBytes = ReadMetadata(handle, metadataRegion.FileOffset, (int)metadataRegion.Length, overlay);
        VhdxMetadata metadata = VhdxMetadata.Parse(metadataBytes, path, metadataRegion.FileOffset);
        var geometry = new VhdxGeometry(metadata.VirtualDiskSize, metadata.BlockSize, metadata.LogicalSectorSize, metadata.HasParent);

        // MS-VHDX 2.5: the BAT holds BatEntries 8-byte entries (virtual size / block size, plus one sector-bitmap
        // entry per chunk) inside the BAT region, which lies inside the file (checked above). So the BAT this
        // allocates is never larger than the file: at most 64 TiB / 1 MiB blocks ≈ 67 M entries = 512 MiB, and
        // only for a file that holds such a BAT.
        long batLength = geometry.BatEntries * 8;
        if (batLength > batRegion.Length || batLength > fileLength - batRegion.FileOffset)
        {
            throw new VhdxFormatException(path, "BAT", batRegion.FileOffset, $"region of {batRegion.Length} bytes is smaller than the {geometry.BatEntries} entries the disk needs.");
        }

        ulong[] bat = ReadBat(handle, batRegion.FileOffset, geometry.BatEntries, overlay);
        long allocatedEnd = ValidateLayout(path, header, regions, geometry, metadata, bat, batRegion.FileOffset, fileLength);
        return new State(header, slot, metadata, regions, geometry, bat, batRegion.FileOffset, fileLength, overlay, pending is not null) { Replay = pending, AllocatedEnd = allocatedEnd };
    }

    private static (FileHeader Header, int Slot) ChooseHeader(string path, byte[] headerSection)
    {
        FileHeader? h1 = FileHeader.TryParse(headerSection.AsSpan((int)VhdxConstants.Header1Offset, VhdxConstants.HeaderSize));
        FileHeader? h2 = FileHeader.TryParse(headerSection.AsSpan((int)VhdxConstants.Header2Offset, VhdxConstants.HeaderSize));
        if (h1 is null && h2 is null)
        {
            throw new VhdxFormatException(path, "header", VhdxConstants.Header1Offset, "neither header copy is valid (bad signature or CRC-32C).");
        }

        if (h1 is null)
        {
            return (h2!, 1);
        }

        if (h2 is null || h1.SequenceNumber > h2.SequenceNumber)
        {
            return (h1, 0);
        }

        if (h2.SequenceNumber > h1.SequenceNumber)
        {
            return (h2, 1);
        }

        // Equal sequence numbers name no current header; identical copies (as Disk2VHD writes) are accepted.
        if (h1 == h2)
        {
            return (h1, 0);
        }

        throw new VhdxFormatException(path, "header", VhdxConstants.Header1Offset, $"both headers are valid with sequence number {h1.SequenceNumber} but differ.");
    }

    private static RegionTable ReadRegionTable(string path, byte[] headerSection, List<LogUpdate>? overlay)
    {
        Span<byte> table1 = headerSection.AsSpan((int)VhdxConstants.RegionTable1Offset, VhdxConstants.RegionTableSize);
        Span<byte> table2 = headerSection.AsSpan((int)VhdxConstants.RegionTable2Offset, VhdxConstants.RegionTableSize);
        if (overlay is not null)
        {
            VhdxFile.ApplyOverlay(overlay, VhdxConstants.RegionTable1Offset, table1);
            VhdxFile.ApplyOverlay(overlay, VhdxConstants.RegionTable2Offset, table2);
        }

        try
        {
            return RegionTable.Parse(table1, path, VhdxConstants.RegionTable1Offset);
        }
        catch (VhdxFormatException first)
        {
            // The second copy exists for exactly this case; if it is also bad, report the first problem.
            try
            {
                return RegionTable.Parse(table2, path, VhdxConstants.RegionTable2Offset);
            }
            catch (VhdxFormatException)
            {
                throw first;
            }
        }
    }

    private static long ValidateLayout(string path, FileHeader header, RegionTable regions, VhdxGeometry geometry,
        VhdxMetadata metadata, ulong[] bat, long batOffset, long fileLength)
    {
        // One record per top-level object, 24 bytes without a string (described only when one overlaps another):
        // a block takes at least 1 MiB of the file and blocks may not overlap, so the list is bounded by the file.
        // What: -1 the header section, -2 the log, -3 - k region k, i ≥ 0 BAT entry i.
        var objects = new List<LayoutObject>(regions.Entries.Count + 2) { new(0, VhdxConstants.HeaderSectionLength, -1) };
        long allocatedEnd = 0;
        if (header.LogLength > 0)
        {
            objects.Add(new((long)header.LogOffset, (long)header.LogOffset + header.LogLength, -2));
        }

        for (int k = 0; k < regions.Entries.Count; k++)
        {
            RegionTableEntry region = regions.Entries[k];
            objects.Add(new(region.FileOffset, region.FileOffset + region.Length, -3 - k));
        }

        for (long i = 0; i < bat.Length; i++)
        {
            var entry = new BatEntry(bat[i]);
            long entryOffset = batOffset + (i * 8);
            bool isBitmap = geometry.IsSectorBitmapIndex(i);
            long length;
            if (isBitmap)
            {
                if (entry.State == SectorBitmapState.NotPresent)
                {
                    continue;
                }

                if (entry.State != SectorBitmapState.Present || !metadata.HasParent)
                {
                    throw new VhdxFormatException(path, $"BAT entry {i}", entryOffset, $"sector-bitmap state {entry.State} is invalid in a {(metadata.HasParent ? "differencing" : "non-differencing")} file.");
                }

                length = VhdxConstants.SectorBitmapBlockSize;
            }
            else
            {
                switch (entry.State)
                {
                    case 0 or 1 or 2 or 3 or 5:
                        continue;
                    case 6:
                        break;
                    case 7 when metadata.HasParent:
                        long chunk = (i - (i / (geometry.ChunkRatio + 1))) / geometry.ChunkRatio;
                        if (new BatEntry(bat[geometry.SectorBitmapIndex(chunk)]).State != SectorBitmapState.Present)
                        {
                            throw new VhdxFormatException(path, $"BAT entry {i}", entryOffset, "block is PARTIALLY_PRESENT but its chunk has no sector bitmap.");
                        }

                        break;
                    default:
                        throw new VhdxFormatException(path, $"BAT entry {i}", entryOffset, $"payload state {entry.State} is invalid in a {(metadata.HasParent ? "differencing" : "non-differencing")} file.");
                }

                length = geometry.BlockSize;
            }

            // A block must lie wholly inside the file; a file cut short (truncated copy, full disk) would otherwise
            // read the missing part as zeroes without a word. The last payload block counts only its virtual part.
            long needed = isBitmap ? length : geometry.BlockLength(i - (i / (geometry.ChunkRatio + 1)));
            if (entry.FileOffset < VhdxConstants.HeaderSectionLength || entry.FileOffset > fileLength - needed)
            {
                throw new VhdxFormatException(path, $"BAT entry {i}", entryOffset, $"block at {entry.FileOffset} of {needed} bytes lies outside the {fileLength}-byte file (truncated?).");
            }

            // Overlaps count only the bytes a block uses (a short last block may sit at the end of the file); the
            // writer allocates past the full block, so it never lands inside one.
            objects.Add(new(entry.FileOffset, entry.FileOffset + needed, i));
            allocatedEnd = Math.Max(allocatedEnd, entry.FileOffset + length);
        }

        objects.Sort(static (a, b) => a.Start.CompareTo(b.Start));
        for (int i = 1; i < objects.Count; i++)
        {
            if (objects[i].Start < objects[i - 1].End)
            {
                throw new VhdxFormatException(path, "layout", objects[i].Start, $"{Describe(objects[i].What, regions)} overlaps {Describe(objects[i - 1].What, regions)}.");
            }
        }

        return Math.Max(allocatedEnd, objects[^1].End);
    }

    private static string Describe(long what, RegionTable regions) => what switch
    {
        -1 => "the header section",
        -2 => "the log",
        < -2 => $"region {regions.Entries[(int)(-3 - what)].Guid}",
        _ => $"BAT entry {what}",
    };

    // Reads the BAT straight into its entry array (no second copy of up to 512 MiB), then lays the log's pending
    // updates over it. The caller has checked that the entries lie inside the file.
    private static ulong[] ReadBat(SafeFileHandle handle, long offset, long entries, List<LogUpdate>? overlay)
    {
        ulong[] bat = new ulong[entries];
        Span<byte> bytes = MemoryMarshal.AsBytes(bat.AsSpan());
        int done = 0;
        while (done < bytes.Length)
        {
            int n = RandomAccess.Read(handle, bytes[done..], offset + done);
            if (n == 0)
            {
                break;
            }

            done += n;
        }

        if (overlay is not null)
        {
            VhdxFile.ApplyOverlay(overlay, offset, bytes);
        }

        if (!BitConverter.IsLittleEndian)
        {
            BinaryPrimitives.ReverseEndianness(bat, bat);
        }

        return bat;
    }

    // Every update must lie inside the file the entry describes (LastFileOffset), and that file must be of a size a
    // VHDX can have; checked before a writable open applies anything, so a hostile log changes nothing.
    private static void ValidateReplay(string path, long logOffset, LogReplay replay)
    {
        if (replay.LastFileOffset < 0 || replay.LastFileOffset > MaxFileLength || replay.FlushedFileOffset < 0
            || replay.FlushedFileOffset > replay.LastFileOffset)
        {
            throw new VhdxFormatException(path, "log", logOffset, $"entry {replay.HeadSequence} gives absurd file sizes (flushed {replay.FlushedFileOffset}, last {replay.LastFileOffset}).");
        }

        foreach (LogUpdate update in replay.Updates)
        {
            if (update.FileOffset < VhdxConstants.RegionTable1Offset || update.Length < 0
                || update.FileOffset > replay.LastFileOffset - update.Length)
            {
                throw new VhdxFormatException(path, "log", logOffset, $"an update at {update.FileOffset} of {update.Length} bytes lies before the region table or past the file's last offset {replay.LastFileOffset}.");
            }
        }
    }

    private static void Apply(SafeFileHandle handle, LogReplay replay)
    {
        // MS-VHDX 2.3.3: write every update in order, extend to LastFileOffset, flush.
        foreach (LogUpdate update in replay.Updates)
        {
            if (update.Data is not null)
            {
                RandomAccess.Write(handle, update.Data, update.FileOffset);
            }
            else if (update.Length > 0)
            {
                if (RandomAccess.GetLength(handle) < update.FileOffset + update.Length)
                {
                    RandomAccess.SetLength(handle, update.FileOffset + update.Length);
                }

                SparseFile.PunchHole(handle, update.FileOffset, update.Length);
            }
        }

        if (RandomAccess.GetLength(handle) < replay.LastFileOffset)
        {
            RandomAccess.SetLength(handle, replay.LastFileOffset);
        }

        RandomAccess.FlushToDisk(handle);
    }

    private static byte[] ReadMetadata(SafeFileHandle handle, long offset, int length, List<LogUpdate>? overlay)
    {
        byte[] bytes = ReadExactly(handle, offset, length);
        if (overlay is not null)
        {
            VhdxFile.ApplyOverlay(overlay, offset, bytes);
        }

        return bytes;
    }

    // Reads length bytes; a short file reads as zeroes past its end (callers check bounds first).
    private static byte[] ReadExactly(SafeFileHandle handle, long offset, int length)
    {
        byte[] bytes = new byte[length];
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

    private readonly record struct LayoutObject(long Start, long End, long What);

    /// <summary>The creator string of the file type identifier.</summary>
    public static string ReadCreator(SafeFileHandle handle)
    {
        byte[] identifier = ReadExactly(handle, 8, 512);
        string creator = Encoding.Unicode.GetString(identifier);
        int nul = creator.IndexOf('\0', StringComparison.Ordinal);
        return nul >= 0 ? creator[..nul] : creator;
    }
}
