using System.Buffers.Binary;
using System.Text;
using BlockDriver.Abstractions;
using BlockDriver.Interop;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Vhdx;

/// <summary>One VHDX file (MS-VHDX): headers, region table, metadata, BAT, sector bitmaps and log. It knows its own
/// blocks only; <see cref="VhdxDisk"/> chains files and sends a run the file does not hold to the parent.</summary>
/// <remarks>
/// <para>Metadata (BAT and sector-bitmap pages) lives in memory and is written back on <see cref="CommitAsync"/>
/// through the log: payload data is flushed first, then one log entry with the changed 4 KiB pages, flush, the
/// pages in place, flush (MS-VHDX 2.3). A crash at any point leaves either the old or the new metadata, and never
/// metadata that points at unflushed data. New payload blocks are appended at the end of the file by extending
/// it, so an unwritten part of a block is a hole in the host file and costs no disk space.</para>
/// <para>Thread safety: metadata is guarded by one lock taken only for in-memory work (and the occasional 4 KiB
/// bitmap page load); payload I/O runs outside it. Commits and header updates are serialized by an async gate.
/// Concurrent requests on disjoint sector ranges are safe.</para>
/// </remarks>
public sealed class VhdxFile : IAsyncDisposable
{
    private const int Page = VhdxConstants.LogSectorSize;

    // Writers commit early once this many metadata pages (8 MiB) are dirty; otherwise only a flush commits, as
    // nothing written is promised durable before one. A commit bigger than one log entry (at most half the log,
    // about 120 pages with the default 1 MiB log) is written as several entries, BAT pages first (see
    // CommitLockedAsync). Small enough to keep a commit short, large enough that random writes across a
    // differencing disk of hundreds of GiB do not commit every few hundred writes (each commit costs three fsyncs).
    private const int DirtyPageThreshold = 2048;

    // Payload reads and writes up to this long use synchronous pread/pwrite: on Linux RandomAccess.ReadAsync/
    // WriteAsync queue every call to the thread pool, which costs more than a 64 KiB page-cache copy.
    private const int SyncIoLimit = 64 * 1024;

    private readonly SafeFileHandle _handle;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ulong[] _bat;
    private readonly long _batOffset;
    private readonly Dictionary<long, byte[]> _bitmapPages = new();
    private readonly SortedSet<long> _dirtyPages = new();
    private readonly List<LogUpdate>? _overlay;
    private readonly VhdxGeometry _geometry;

    private FileHeader _header;
    private int _currentHeaderSlot;
    private long _fileEnd;

    // Length of a read-only file at open; reads past it are zeroes without asking the kernel (a replayed log may
    // describe a longer file, at offsets the host file system cannot even address).
    private readonly long _readOnlyLength;
    private bool _sessionStarted;
    private ulong _logSequence;
    private long _logPosition;
    private Exception? _failure;
    private bool _disposed;

    private VhdxFile(string path, SafeFileHandle handle, bool readOnly, VhdxReader.State state)
    {
        Path = path;
        _handle = handle;
        IsReadOnly = readOnly;
        _header = state.Header;
        _currentHeaderSlot = state.HeaderSlot;
        Metadata = state.Metadata;
        Regions = state.Regions;
        _bat = state.Bat;
        _batOffset = state.BatOffset;
        _fileEnd = AlignUp(Math.Max(state.FileLength, state.AllocatedEnd));
        _readOnlyLength = readOnly ? RandomAccess.GetLength(handle) : -1;
        _overlay = state.Overlay;
        ReplayedLog = state.ReplayedLog;
        _geometry = state.Geometry;
    }

    /// <summary>The file's path as given to open.</summary>
    public string Path { get; }

    /// <summary>True when opened read-only.</summary>
    public bool IsReadOnly { get; }

    /// <summary>Virtual disk size in bytes.</summary>
    public long VirtualSize => Metadata.VirtualDiskSize;

    /// <summary>Payload block size in bytes.</summary>
    public int BlockSize => Metadata.BlockSize;

    /// <summary>Logical sector size in bytes (512 or 4096): the copy-on-write granularity.</summary>
    public int LogicalSectorSize => Metadata.LogicalSectorSize;

    /// <summary>Physical sector size in bytes (512 or 4096).</summary>
    public int PhysicalSectorSize => Metadata.PhysicalSectorSize;

    /// <summary>True for a differencing file.</summary>
    public bool HasParent => Metadata.HasParent;

    /// <summary>The parent locator of a differencing file.</summary>
    public ParentLocator? ParentLocator => Metadata.ParentLocator;

    /// <summary>Identity of the file's content; a child records it as <c>parent_linkage</c>.</summary>
    public Guid DataWriteGuid => _header.DataWriteGuid;

    /// <summary>The Virtual Disk ID metadata item.</summary>
    public Guid VirtualDiskId => Metadata.VirtualDiskId;

    /// <summary>True when open found a pending log and replayed it (in place, or in memory when read-only).</summary>
    public bool ReplayedLog { get; }

    /// <summary>Bytes the file occupies on disk (st_blocks × 512).</summary>
    public long AllocatedBytes => SparseFile.AllocatedBytes(Path);

    internal VhdxMetadata Metadata { get; }

    internal RegionTable Regions { get; }

    internal VhdxGeometry Geometry => _geometry;

    internal FileHeader Header => _header;

    /// <summary>Test hook: when set, a commit throws after writing and flushing its log entry but before applying
    /// it, leaving the file as a crash at that point would.</summary>
    internal bool FailAfterLogWrite { get; set; }

    /// <summary>Creates a dynamic VHDX of <paramref name="virtualSize"/> bytes. The new file holds only its
    /// headers and metadata on disk (a few KiB); the log and BAT are holes.</summary>
    /// <exception cref="BlockDriverException">AlreadyExists, or InvalidArgument for a bad size or option.</exception>
    public static void CreateDynamic(string path, long virtualSize, VhdxCreateOptions? options = null)
    {
        options ??= new VhdxCreateOptions();
        int blockSize = options.BlockSize ?? VhdxConstants.DefaultBlockSize;
        ValidateCreate(virtualSize, blockSize, options.LogicalSectorSize, options.PhysicalSectorSize);
        var metadata = new VhdxMetadata
        {
            BlockSize = blockSize,
            VirtualDiskSize = virtualSize,
            VirtualDiskId = Guid.NewGuid(),
            LogicalSectorSize = options.LogicalSectorSize,
            PhysicalSectorSize = options.PhysicalSectorSize,
        };
        WriteNewFile(path, metadata, options.Creator);
    }

    /// <summary>Creates a differencing VHDX over <paramref name="parentPath"/>: the parent's virtual size, sector
    /// sizes and disk id are copied, and the locator records the parent's current DataWriteGuid and its relative
    /// and absolute paths. The parent is opened read-only and not changed.</summary>
    public static async Task CreateDifferencingAsync(string path, string parentPath, VhdxCreateOptions? options = null, CancellationToken ct = default)
    {
        options ??= new VhdxCreateOptions();
        VhdxFile parent = Open(parentPath, readOnly: true);
        await using (parent.ConfigureAwait(false))
        {
            int blockSize = options.BlockSize ?? parent.BlockSize;
            ValidateCreate(parent.VirtualSize, blockSize, parent.LogicalSectorSize, parent.PhysicalSectorSize);
            var metadata = new VhdxMetadata
            {
                BlockSize = blockSize,
                HasParent = true,
                VirtualDiskSize = parent.VirtualSize,
                VirtualDiskId = parent.VirtualDiskId,
                LogicalSectorSize = parent.LogicalSectorSize,
                PhysicalSectorSize = parent.PhysicalSectorSize,
                ParentLocator = ParentLocator.ForParent(path, parentPath, parent.DataWriteGuid),
            };
            WriteNewFile(path, metadata, options.Creator);
        }
    }

    /// <summary>Opens one file (not its parents). A writable open starts a session: the headers get a new
    /// FileWriteGuid before anything else changes, and a pending log is replayed in place. A read-only open
    /// changes nothing; a pending log is then replayed into memory.</summary>
    /// <exception cref="VhdxFormatException">The file is malformed.</exception>
    /// <exception cref="BlockDriverException">NotFound; InUse when another writer holds it.</exception>
    public static VhdxFile Open(string path, bool readOnly = false) => Open(path, readOnly, parentRoot: null);

    /// <summary>Opens a parent found through a locator: as <see cref="Open(string, bool)"/>, but the file the handle
    /// opened must lie inside <paramref name="parentRoot"/> (when not null), checked on the open handle before a
    /// byte is read, so that a link swapped in after the locator was resolved cannot make it read (or describe) a
    /// file elsewhere.</summary>
    internal static VhdxFile Open(string path, bool readOnly, string? parentRoot)
    {
        if (!File.Exists(path))
        {
            throw new BlockDriverException(ErrorKind.NotFound, $"{path}: no such file.");
        }

        if (!SparseFile.IsRegularFile(path))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"{path}: not a regular file.");
        }

        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite,
                readOnly ? FileShare.ReadWrite : FileShare.Read);
        }
        catch (IOException e)
        {
            throw new BlockDriverException(ErrorKind.InUse, $"{path}: cannot open {(readOnly ? "for reading" : "for writing")}: {e.Message}", e);
        }

        try
        {
            if (parentRoot is not null)
            {
                ChainLinks.CheckOpenedInside(handle, path, parentRoot);
            }

            return new VhdxFile(path, handle, readOnly, VhdxReader.Read(path, handle, readOnly));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Resolves [offset, offset + length) into runs (in this file, zero, or the parent's), appending to
    /// <paramref name="runs"/>. Adjacent runs of the same kind are merged, as are present runs contiguous in the
    /// file. The caller has checked the range.</summary>
    internal void Resolve(long offset, long length, List<BlockRun> runs)
    {
        lock (_lock)
        {
            ThrowIfUnusable();
            long end = offset + length;
            while (offset < end)
            {
                long block = offset / BlockSize;
                int inBlock = (int)(offset % BlockSize);
                int count = (int)Math.Min(BlockSize - inBlock, end - offset);
                var entry = new BatEntry(_bat[_geometry.PayloadIndex(block)]);
                switch ((PayloadBlockState)entry.State)
                {
                    case PayloadBlockState.FullyPresent:
                        Append(runs, new BlockRun(offset, count, RunKind.Present, entry.FileOffset + inBlock));
                        break;
                    case PayloadBlockState.PartiallyPresent:
                        ResolveBitmap(block, entry.FileOffset, offset, inBlock, count, runs);
                        break;
                    case PayloadBlockState.NotPresent:
                        Append(runs, new BlockRun(offset, count, HasParent ? RunKind.Parent : RunKind.Hole, 0));
                        break;
                    default:
                        // ZERO, UNMAPPED, UNDEFINED and the legacy unmapped value 5: zeroes, never the parent.
                        Append(runs, new BlockRun(offset, count, RunKind.Zero, 0));
                        break;
                }

                offset += count;
            }
        }
    }

    /// <summary>Forgets the cached sector-bitmap pages of a read-only file (a later <see cref="Resolve"/> reads them
    /// again); a <see cref="VhdxChain"/> calls it once its index holds what they say. No-op when writable, where
    /// the cache holds pages not yet committed.</summary>
    internal void ReleaseBitmapPages()
    {
        if (IsReadOnly)
        {
            lock (_lock)
            {
                _bitmapPages.Clear();
                _bitmapPages.TrimExcess();
            }
        }
    }

    /// <summary>Reads payload bytes at a file offset returned by <see cref="Resolve"/>. Bytes past the end of the
    /// file read as zeroes.</summary>
    internal async ValueTask ReadDataAsync(long fileOffset, Memory<byte> buffer, CancellationToken ct)
    {
        if (_readOnlyLength >= 0 && fileOffset + buffer.Length > _readOnlyLength)
        {
            int inFile = (int)Math.Clamp(_readOnlyLength - fileOffset, 0, buffer.Length);
            buffer.Span[inFile..].Clear();
            buffer = buffer[..inFile];
        }

        int done = 0;
        while (done < buffer.Length)
        {
            ct.ThrowIfCancellationRequested();
            int n = buffer.Length - done <= SyncIoLimit
                ? RandomAccess.Read(_handle, buffer.Span[done..], fileOffset + done)
                : await RandomAccess.ReadAsync(_handle, buffer[done..], fileOffset + done, ct).ConfigureAwait(false);
            if (n == 0)
            {
                buffer.Span[done..].Clear();
                break;
            }

            done += n;
        }

        if (_overlay is not null)
        {
            ApplyOverlay(_overlay, fileOffset, buffer.Span);
        }
    }

    /// <summary>Writes sector-aligned data at a virtual offset (checked by the caller): allocates blocks as needed,
    /// writes the payload, then marks the sectors present. Durable after <see cref="CommitAsync"/>.</summary>
    internal async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        await BeginChangeAsync(ct).ConfigureAwait(false);
        int done = 0;
        while (done < data.Length)
        {
            long position = offset + done;
            long block = position / BlockSize;
            int inBlock = (int)(position % BlockSize);
            int count = Math.Min(BlockSize - inBlock, data.Length - done);
            (long fileOffset, bool setBits) = PrepareBlockForWrite(block);
            if (count <= SyncIoLimit)
            {
                ct.ThrowIfCancellationRequested();
                RandomAccess.Write(_handle, data.Span.Slice(done, count), fileOffset + inBlock);
            }
            else
            {
                await RandomAccess.WriteAsync(_handle, data.Slice(done, count), fileOffset + inBlock, ct).ConfigureAwait(false);
            }

            if (setBits)
            {
                lock (_lock)
                {
                    SetSectorBits(block, inBlock, count);
                }
            }

            done += count;
            await CommitIfManyDirtyAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>Makes a range read as zeroes (<paramref name="trim"/> false) or releases it (true; it may then
    /// read as anything, and a differencing file may keep showing the parent's data where that costs nothing).
    /// Whole blocks become ZERO and their storage is punched out; partial ranges are punched out of the host file,
    /// and in a differencing file their bits are set so the zeroes hide the parent.</summary>
    internal async ValueTask ZeroAsync(long offset, long length, bool trim, CancellationToken ct)
    {
        await BeginChangeAsync(ct).ConfigureAwait(false);
        long end = offset + length;
        while (offset < end)
        {
            long block = offset / BlockSize;
            int inBlock = (int)(offset % BlockSize);
            int count = (int)Math.Min(BlockSize - inBlock, end - offset);
            ZeroInBlock(block, inBlock, count, trim);
            offset += count;
            await CommitIfManyDirtyAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>Makes every completed write durable: payload data first (fsync), then the changed metadata pages
    /// through one log entry, applied in place and flushed again.</summary>
    public async ValueTask CommitAsync(CancellationToken ct = default)
    {
        if (IsReadOnly)
        {
            return;
        }

        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ThrowIfUnusable();
            await CommitLockedAsync().ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Commits, then records <paramref name="dataWriteGuid"/> as the file's DataWriteGuid. Only for a file built to
    /// read exactly like another one it replaces (the result of merging or flattening a layer), so that the
    /// children linked to the replaced file's DataWriteGuid stay valid. The next change generates a new
    /// DataWriteGuid, as any first change of a session does.</summary>
    /// <exception cref="BlockDriverException">ReadOnly.</exception>
    public async ValueTask AdoptDataWriteGuidAsync(Guid dataWriteGuid, CancellationToken ct = default)
    {
        if (IsReadOnly)
        {
            throw new BlockDriverException(ErrorKind.ReadOnly, $"{Path} is open read-only.");
        }

        await CommitAsync(ct).ConfigureAwait(false);
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ThrowIfUnusable();
            UpdateHeader(_header with { DataWriteGuid = dataWriteGuid });
            _sessionStarted = false;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Enumerates the block states of the file, one entry per payload block that is not NOT_PRESENT.</summary>
    public IEnumerable<(long Block, PayloadBlockState State, long FileOffset)> AllocatedBlocks()
    {
        for (long block = 0; block < _geometry.PayloadBlocks; block++)
        {
            BatEntry entry;
            lock (_lock)
            {
                entry = new BatEntry(_bat[_geometry.PayloadIndex(block)]);
            }

            if (entry.State != (int)PayloadBlockState.NotPresent)
            {
                yield return (block, (PayloadBlockState)entry.State, entry.FileOffset);
            }
        }
    }

    /// <summary>Commits pending metadata, marks the log empty and closes the file. Safe to call twice.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        try
        {
            if (!IsReadOnly && _failure is null)
            {
                await _gate.WaitAsync().ConfigureAwait(false);
                try
                {
                    await CommitLockedAsync().ConfigureAwait(false);
                    if (_header.LogGuid != Guid.Empty)
                    {
                        // Everything in the log is applied: an empty log tells the next opener there is nothing to replay.
                        UpdateHeader(_header with { LogGuid = Guid.Empty });
                    }
                }
                finally
                {
                    _gate.Release();
                }
            }
        }
        finally
        {
            _disposed = true;
            _handle.Dispose();
            _gate.Dispose();
        }
    }

    internal static void ApplyOverlay(List<LogUpdate> overlay, long fileOffset, Span<byte> buffer)
    {
        long end = fileOffset + buffer.Length;
        foreach (LogUpdate update in overlay)
        {
            long start = Math.Max(update.FileOffset, fileOffset);
            long stop = Math.Min(update.FileOffset + update.Length, end);
            if (start >= stop)
            {
                continue;
            }

            Span<byte> target = buffer.Slice((int)(start - fileOffset), (int)(stop - start));
            if (update.Data is null)
            {
                target.Clear();
            }
            else
            {
                update.Data.AsSpan((int)(start - update.FileOffset), target.Length).CopyTo(target);
            }
        }
    }

    internal void UpdateHeader(FileHeader changed) =>
        (_header, _currentHeaderSlot) = FileHeader.WriteUpdate(_handle, _header, _currentHeaderSlot, changed);

    private static void ValidateCreate(long virtualSize, int blockSize, int logical, int physical)
    {
        if (blockSize < VhdxConstants.MinBlockSize || blockSize > VhdxConstants.MaxBlockSize || (blockSize & (blockSize - 1)) != 0)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"Block size {blockSize} must be a power of two from 1 MiB to 256 MiB.");
        }

        if (logical is not (512 or 4096) || physical is not (512 or 4096))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"Sector sizes {logical}/{physical} must each be 512 or 4096.");
        }

        if (virtualSize <= 0 || virtualSize > VhdxConstants.MaxVirtualDiskSize || virtualSize % logical != 0)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"Virtual size {virtualSize} must be a positive multiple of {logical} bytes, at most 64 TiB.");
        }
    }

    // Layout (as DiscUtils): identifier, headers and region tables in the first MiB; log at 1 MiB (1 MiB);
    // metadata at 2 MiB (1 MiB); BAT at 3 MiB. Zero ranges are left as holes.
    private static void WriteNewFile(string path, VhdxMetadata metadata, string creator)
    {
        var geometry = new VhdxGeometry(metadata.VirtualDiskSize, metadata.BlockSize, metadata.LogicalSectorSize, metadata.HasParent);
        const long LogOffset = VhdxConstants.MiB;
        const long MetadataOffset = 2L * VhdxConstants.MiB;
        const long BatOffset = 3L * VhdxConstants.MiB;
        long batLength = AlignUp(geometry.DifferencingBatEntries * 8);
        if (batLength > uint.MaxValue)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, "The BAT for this size and block size exceeds 4 GiB; choose a larger block size.");
        }

        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (File.Exists(path))
        {
            throw new BlockDriverException(ErrorKind.AlreadyExists, $"{path} already exists.", e);
        }

        using (handle)
        {
            RandomAccess.SetLength(handle, BatOffset + batLength);

            byte[] identifier = new byte[520];
            Encoding.ASCII.GetBytes("vhdxfile", identifier);
            Encoding.Unicode.GetBytes(creator.Length > 256 ? creator[..256] : creator, identifier.AsSpan(8));
            RandomAccess.Write(handle, identifier, VhdxConstants.FileIdentifierOffset);

            var regions = new RegionTable(
            [
                new RegionTableEntry(VhdxGuids.BatRegion, BatOffset, (uint)batLength, Required: true),
                new RegionTableEntry(VhdxGuids.MetadataRegion, MetadataOffset, VhdxConstants.MiB, Required: true),
            ]);
            byte[] table = new byte[VhdxConstants.RegionTableSize];
            regions.Write(table);
            RandomAccess.Write(handle, table, VhdxConstants.RegionTable1Offset);
            RandomAccess.Write(handle, table, VhdxConstants.RegionTable2Offset);

            byte[] region = new byte[VhdxConstants.MiB];
            metadata.Write(region);
            int used = region.AsSpan().LastIndexOfAnyExcept((byte)0) + 1;
            RandomAccess.Write(handle, region.AsMemory(0, used).Span, MetadataOffset);

            var header = new FileHeader
            {
                SequenceNumber = 1,
                FileWriteGuid = Guid.NewGuid(),
                DataWriteGuid = Guid.NewGuid(),
                LogGuid = Guid.Empty,
                LogLength = VhdxConstants.DefaultLogLength,
                LogOffset = LogOffset,
            };
            byte[] bytes = new byte[VhdxConstants.HeaderSize];
            header.Write(bytes);
            RandomAccess.Write(handle, bytes, VhdxConstants.Header1Offset);
            (header with { SequenceNumber = 2 }).Write(bytes);
            RandomAccess.Write(handle, bytes, VhdxConstants.Header2Offset);
            RandomAccess.FlushToDisk(handle);
        }
    }

    private static long AlignUp(long value) => (value + VhdxConstants.Alignment - 1) & ~(VhdxConstants.Alignment - 1);

    private static void Append(List<BlockRun> runs, BlockRun run)
    {
        if (runs.Count > 0)
        {
            BlockRun last = runs[^1];
            if (last.Kind == run.Kind && last.End == run.Offset
                && (run.Kind != RunKind.Present || last.FileOffset + last.Length == run.FileOffset))
            {
                runs[^1] = last with { Length = last.Length + run.Length };
                return;
            }
        }

        runs.Add(run);
    }

    // Splits a PARTIALLY_PRESENT block's range into runs of equal bitmap bits: 1 = here, 0 = the parent.
    private void ResolveBitmap(long block, long blockFileOffset, long offset, int inBlock, int count, List<BlockRun> runs)
    {
        int sector = LogicalSectorSize;
        long firstBit = BitIndex(block, inBlock / sector);
        long bitCount = count / sector;
        long done = 0;
        while (done < bitCount)
        {
            bool present = GetBit(firstBit + done);
            long run = CountEqualBits(firstBit + done, bitCount - done, present);
            long runOffset = offset + (done * sector);
            Append(runs, present
                ? new BlockRun(runOffset, run * sector, RunKind.Present, blockFileOffset + inBlock + (done * sector))
                : new BlockRun(runOffset, run * sector, RunKind.Parent, 0));
            done += run;
        }
    }

    // Bits are addressed as one number: (chunk file offset, bit within the chunk's 1 MiB bitmap) folded into the
    // absolute bit position inside the file (file offset × 8 + bit), so that page lookups are plain division.
    private long BitIndex(long block, long sectorInBlock)
    {
        long chunk = block / _geometry.ChunkRatio;
        var sb = new BatEntry(_bat[_geometry.SectorBitmapIndex(chunk)]);
        return ((sb.FileOffset + _geometry.BitmapOffsetInChunk(block)) * 8) + sectorInBlock;
    }

    private bool GetBit(long bit)
    {
        byte[] page = BitmapPage(bit / 8 / Page * Page);
        int inPage = (int)(bit / 8 % Page);
        return (page[inPage] & (1 << (int)(bit % 8))) != 0;
    }

    // Counts up to max consecutive bits equal to value starting at bit, a 64-bit word at a time where aligned.
    private long CountEqualBits(long bit, long max, bool value)
    {
        long n = 0;
        ulong all = value ? ulong.MaxValue : 0;
        while (n < max)
        {
            long position = bit + n;
            long pageOffset = position / 8 / Page * Page;
            byte[] page = BitmapPage(pageOffset);
            int inPage = (int)((position / 8) - pageOffset);
            if (position % 64 == 0 && max - n >= 64 && inPage + 8 <= Page)
            {
                ulong word = BinaryPrimitives.ReadUInt64LittleEndian(page.AsSpan(inPage));
                if (word == all)
                {
                    n += 64;
                    continue;
                }
            }

            bool set = (page[inPage] & (1 << (int)(position % 8))) != 0;
            if (set != value)
            {
                break;
            }

            n++;
        }

        return n;
    }

    private byte[] BitmapPage(long pageOffset)
    {
        if (!_bitmapPages.TryGetValue(pageOffset, out byte[]? page))
        {
            page = new byte[Page];
            int read = RandomAccess.Read(_handle, page, pageOffset);
            page.AsSpan(read).Clear();
            if (_overlay is not null)
            {
                ApplyOverlay(_overlay, pageOffset, page);
            }

            _bitmapPages.Add(pageOffset, page);
        }

        return page;
    }

    private void SetSectorBits(long block, int inBlock, int count)
    {
        int sector = LogicalSectorSize;
        long first = BitIndex(block, inBlock / sector);
        long bits = count / sector;
        for (long bit = first; bit < first + bits;)
        {
            long pageOffset = bit / 8 / Page * Page;
            byte[] page = BitmapPage(pageOffset);
            long pageEndBit = (pageOffset + Page) * 8;
            long stop = Math.Min(first + bits, pageEndBit);
            for (; bit < stop; bit++)
            {
                int inPage = (int)((bit / 8) - pageOffset);
                page[inPage] |= (byte)(1 << (int)(bit % 8));
            }

            _dirtyPages.Add(pageOffset);
        }

        // A block whose every sector is now here needs no bitmap lookups any more.
        long blockFirst = BitIndex(block, 0);
        int blockBits = _geometry.BlockLength(block) / sector;
        if (CountEqualBits(blockFirst, blockBits, value: true) == blockBits)
        {
            long index = _geometry.PayloadIndex(block);
            SetBat(index, BatEntry.Create((int)PayloadBlockState.FullyPresent, new BatEntry(_bat[index]).FileOffset));
        }
    }

    // Decides where a write into the block goes, allocating the block (and the chunk's bitmap) when needed.
    // Returns the block's file offset and whether the written sectors must be marked in the bitmap.
    private (long FileOffset, bool SetBits) PrepareBlockForWrite(long block)
    {
        lock (_lock)
        {
            ThrowIfUnusable();
            long index = _geometry.PayloadIndex(block);
            var entry = new BatEntry(_bat[index]);
            switch ((PayloadBlockState)entry.State)
            {
                case PayloadBlockState.FullyPresent:
                    return (entry.FileOffset, false);
                case PayloadBlockState.PartiallyPresent:
                    return (entry.FileOffset, true);
                case PayloadBlockState.NotPresent when HasParent:
                    {
                        // Copy-on-write at sector granularity: the block starts empty (a hole) and only the written
                        // sectors are marked; every other sector still comes from the parent.
                        EnsureSectorBitmap(block / _geometry.ChunkRatio);
                        long fileOffset = AllocateBlock(BlockSize);
                        SetBat(index, BatEntry.Create((int)PayloadBlockState.PartiallyPresent, fileOffset));
                        return (fileOffset, true);
                    }

                default:
                    {
                        // Zero-reading states (and NOT_PRESENT without a parent): the new block is a fresh hole, so
                        // every sector not written reads as zero, exactly as before; FULLY_PRESENT says so without
                        // consulting the parent.
                        long fileOffset = AllocateBlock(BlockSize);
                        SetBat(index, BatEntry.Create((int)PayloadBlockState.FullyPresent, fileOffset));
                        return (fileOffset, false);
                    }
            }
        }
    }

    private void ZeroInBlock(long block, int inBlock, int count, bool trim)
    {
        lock (_lock)
        {
            ThrowIfUnusable();
            long index = _geometry.PayloadIndex(block);
            var entry = new BatEntry(_bat[index]);
            var state = (PayloadBlockState)entry.State;
            bool whole = inBlock == 0 && count == _geometry.BlockLength(block);
            bool hasStorage = state is PayloadBlockState.FullyPresent or PayloadBlockState.PartiallyPresent;

            if (whole && !Metadata.LeaveBlockAllocated)
            {
                if (state is PayloadBlockState.Zero || (state is PayloadBlockState.NotPresent && !HasParent))
                {
                    return;
                }

                if (trim && state is PayloadBlockState.NotPresent)
                {
                    return;
                }

                // ZERO (offset 0, as Hyper-V requires) reads as zeroes in every file type and hides the parent.
                SetBat(index, BatEntry.Create((int)PayloadBlockState.Zero, 0));
                if (hasStorage)
                {
                    // Until the BAT change is committed the old entry still points here; a hole reads as zeroes,
                    // which is what this change means anyway. The range is never reused for another block.
                    SparseFile.PunchHole(_handle, entry.FileOffset, BlockSize);
                }

                return;
            }

            switch (state)
            {
                case PayloadBlockState.FullyPresent:
                    SparseFile.PunchHole(_handle, entry.FileOffset + inBlock, count);
                    break;
                case PayloadBlockState.PartiallyPresent:
                    SparseFile.PunchHole(_handle, entry.FileOffset + inBlock, count);
                    SetSectorBits(block, inBlock, count);
                    break;
                case PayloadBlockState.NotPresent when HasParent && !trim:
                    {
                        // Zeroes must hide the parent: a fresh (hole) block with the range's bits set.
                        EnsureSectorBitmap(block / _geometry.ChunkRatio);
                        long fileOffset = AllocateBlock(BlockSize);
                        SetBat(index, BatEntry.Create((int)PayloadBlockState.PartiallyPresent, fileOffset));
                        SetSectorBits(block, inBlock, count);
                        break;
                    }

                default:
                    // Already reads as zeroes, or a trim over the parent's data, which may stay visible.
                    break;
            }
        }
    }

    private void EnsureSectorBitmap(long chunk)
    {
        long index = _geometry.SectorBitmapIndex(chunk);
        if (new BatEntry(_bat[index]).State != SectorBitmapState.Present)
        {
            // A fresh 1 MiB past the end of file reads as zeroes: every bit says "parent".
            long fileOffset = AllocateBlock(VhdxConstants.SectorBitmapBlockSize);
            SetBat(index, BatEntry.Create(SectorBitmapState.Present, fileOffset));
        }
    }

    private long AllocateBlock(long length)
    {
        long fileOffset = _fileEnd;
        _fileEnd += AlignUp(length);
        RandomAccess.SetLength(_handle, _fileEnd);
        return fileOffset;
    }

    private void SetBat(long index, BatEntry entry)
    {
        _bat[index] = entry.Raw;
        _dirtyPages.Add(_batOffset + (index * 8 / Page * Page));
    }

    private async ValueTask BeginChangeAsync(CancellationToken ct)
    {
        if (IsReadOnly)
        {
            throw new BlockDriverException(ErrorKind.ReadOnly, $"{Path} is open read-only.");
        }

        if (_sessionStarted)
        {
            return;
        }

        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ThrowIfUnusable();
            if (!_sessionStarted)
            {
                // MS-VHDX 2.2.2: a new DataWriteGuid before the first user-visible change, and a new LogGuid before
                // the log is written, so that entries of earlier sessions can never be replayed.
                UpdateHeader(_header with { DataWriteGuid = Guid.NewGuid(), LogGuid = Guid.NewGuid() });
                _logSequence = 1;
                _logPosition = 0;
                _sessionStarted = true;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async ValueTask CommitIfManyDirtyAsync(CancellationToken ct)
    {
        bool many;
        lock (_lock)
        {
            many = _dirtyPages.Count >= DirtyPageThreshold;
        }

        if (many)
        {
            await CommitAsync(ct).ConfigureAwait(false);
        }
    }

    private async Task CommitLockedAsync()
    {
        List<(long FileOffset, byte[] Page)> pages;
        long fileEnd;
        lock (_lock)
        {
            // BAT pages before sector-bitmap pages: when a commit spans several log entries and a crash keeps only
            // the first ones, a block may be allocated with fewer sector bits than were written (those sectors read
            // from the parent, as before the unflushed writes), but bits are never set for a block the BAT does not
            // point at (a later allocation there would find them and hide the parent).
            pages = new List<(long, byte[])>(_dirtyPages.Count);
            long batEnd = _batOffset + ((long)_bat.Length * 8);
            foreach (long pageOffset in _dirtyPages.Where(o => o >= _batOffset && o < batEnd))
            {
                pages.Add((pageOffset, SnapshotPage(pageOffset)));
            }

            foreach (long pageOffset in _dirtyPages.Where(o => o < _batOffset || o >= batEnd))
            {
                pages.Add((pageOffset, SnapshotPage(pageOffset)));
            }

            _dirtyPages.Clear();
            fileEnd = _fileEnd;
        }

        try
        {
            // Payload (and the file's new length) must be stable before any metadata that points at it.
            RandomAccess.FlushToDisk(_handle);
            if (pages.Count == 0)
            {
                return;
            }

            // Order inside one entry does not matter, since an entry is applied whole or not at all; across entries
            // the BAT goes first (above).
            int perEntry = VhdxLog.MaxPagesPerEntry(_header.LogLength / 2);
            for (int start = 0; start < pages.Count; start += perEntry)
            {
                List<(long, byte[])> batch = pages.GetRange(start, Math.Min(perEntry, pages.Count - start));
                await WriteLogEntryAndApplyAsync(batch, fileEnd).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            // The on-disk state is whatever a crash here would leave, which the log makes safe; this session can
            // no longer vouch for it, so it refuses further work.
            _failure = e;
            throw;
        }
    }

    private async Task WriteLogEntryAndApplyAsync(List<(long FileOffset, byte[] Page)> pages, long fileEnd)
    {
        long logLength = _header.LogLength;
        byte[] entry = VhdxLog.BuildEntry(_header.LogGuid, _logSequence, (uint)_logPosition, fileEnd, fileEnd, pages);
        if (_logPosition + entry.Length > logLength)
        {
            // Entries are contiguous; start over at the beginning. An entry is at most half the log, so this one
            // cannot reach the previous entry, which stays intact until this one is complete.
            _logPosition = 0;
            entry = VhdxLog.BuildEntry(_header.LogGuid, _logSequence, 0, fileEnd, fileEnd, pages);
        }

        await RandomAccess.WriteAsync(_handle, entry, (long)_header.LogOffset + _logPosition).ConfigureAwait(false);
        RandomAccess.FlushToDisk(_handle);
        _logSequence++;
        _logPosition += entry.Length;
        if (FailAfterLogWrite)
        {
            throw new IOException("Injected failure after the log write (test hook).");
        }

        foreach ((long fileOffset, byte[] page) in pages)
        {
            await RandomAccess.WriteAsync(_handle, page, fileOffset).ConfigureAwait(false);
        }

        RandomAccess.FlushToDisk(_handle);
    }

    private byte[] SnapshotPage(long pageOffset)
    {
        if (_bitmapPages.TryGetValue(pageOffset, out byte[]? bitmap))
        {
            return (byte[])bitmap.Clone();
        }

        byte[] page = new byte[Page];
        long firstIndex = (pageOffset - _batOffset) / 8;
        for (int i = 0; i < Page / 8; i++)
        {
            long index = firstIndex + i;
            if (index < _bat.Length)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(page.AsSpan(i * 8), _bat[index]);
            }
        }

        return page;
    }

    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_failure is not null)
        {
            throw new BlockDriverException(ErrorKind.Unavailable, $"{Path}: an earlier metadata commit failed ({_failure.Message}); reopen the file.", _failure);
        }
    }
}
