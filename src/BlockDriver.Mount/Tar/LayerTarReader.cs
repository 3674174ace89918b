using System.Buffers;
using System.Text;
using BlockDriver.Abstractions;

namespace BlockDriver.Mount.Tar;

/// <summary>Reads a tar stream entry by entry with names as bytes: ustar and V7 headers, octal and base-256
/// numbers, pax 'x' records (path, linkpath, size, uid, gid, mtime, SCHILY.xattr.*, GNU.sparse.*; 'g' read and
/// ignored), GNU ././@LongLink 'L' and 'K', GNU sparse 'S' with its extension blocks, pax sparse 0.0, 0.1 and 1.0.
/// Entry data is streamed (<see cref="ReadAsync"/>), never buffered; what the caller does not read is skipped.</summary>
/// <remarks>Bounded whatever the stream holds: an extension header ('x', 'g', 'L', 'K') over
/// <see cref="MaxHeaderBytes"/> and a sparse map over <see cref="MaxSparseSegments"/> regions are refused (Go's
/// archive/tar caps headers at 1 MiB too). Every malformed input is a <see cref="BlockDriverException"/>
/// (InvalidArgument) naming the entry and where it is. Not thread-safe.</remarks>
internal sealed class LayerTarReader(Stream stream)
{
    /// <summary>The largest pax or GNU long-name/long-link header accepted: 1 MiB.</summary>
    public const int MaxHeaderBytes = 1 << 20;

    /// <summary>The most regions a sparse map may have (16 bytes each in memory: 1 MiB).</summary>
    public const int MaxSparseSegments = 1 << 16;

    private readonly byte[] _block = new byte[TarHeaderBlock.Size];
    private long _offset;      // bytes consumed from the stream
    private long _remaining;   // data bytes of the current entry not yet read
    private int _padding;      // zero bytes after them up to the next block
    private int _index;        // entries returned so far
    private string _last = "the start of the archive";

    /// <summary>Bytes of the stream consumed so far.</summary>
    public long Offset => _offset;

    /// <summary>The next entry (its data ready for <see cref="ReadAsync"/>), or null at the end of the archive (two
    /// zero blocks, or the end of the stream on a block boundary).</summary>
    public async ValueTask<TarHeader?> NextAsync(CancellationToken ct = default)
    {
        await SkipAsync(_remaining + _padding, ct).ConfigureAwait(false);
        _remaining = 0;
        _padding = 0;
        List<(byte[] Key, byte[] Value)>? pax = null;
        byte[]? longName = null;
        byte[]? longLink = null;
        while (true)
        {
            long headerOffset = _offset;
            if (!await ReadBlockAsync(_block, endAllowed: pax is null && longName is null && longLink is null, ct).ConfigureAwait(false))
            {
                return null;
            }

            if (!_block.AsSpan().ContainsAnyExcept((byte)0))
            {
                if (pax is not null || longName is not null || longLink is not null)
                {
                    throw Invalid(headerOffset, "an extension header is followed by the end of the archive");
                }

                return null;
            }

            if (!TarHeaderBlock.ChecksumMatches(_block))
            {
                throw Invalid(headerOffset, "the header checksum does not match (not a tar, or corrupt)");
            }

            byte type = _block[TarHeaderBlock.TypeFlag];
            long size = Number(TarHeaderBlock.FileSize, "size", headerOffset);
            if (type is TarTypeFlag.PaxExtended or TarTypeFlag.PaxGlobal or TarTypeFlag.GnuLongName or TarTypeFlag.GnuLongLink)
            {
                byte[] data = await ReadExtensionAsync(type, size, headerOffset, ct).ConfigureAwait(false);
                switch (type)
                {
                    case TarTypeFlag.PaxExtended:
                        (pax ??= []).AddRange(PaxRecords.Parse(data, Where(headerOffset)));
                        break;
                    case TarTypeFlag.PaxGlobal:
                        _ = PaxRecords.Parse(data, Where(headerOffset)); // checked, then ignored as Docker does
                        break;
                    case TarTypeFlag.GnuLongName:
                        longName = TarHeaderBlock.String(data);
                        break;
                    default:
                        longLink = TarHeaderBlock.String(data);
                        break;
                }

                continue;
            }

            TarHeader header = await BuildAsync(type, size, headerOffset, pax, longName, longLink, ct).ConfigureAwait(false);
            _index++;
            _last = $"entry \"{header.DisplayName}\"";
            return header;
        }
    }

    /// <summary>Reads data of the current entry; 0 at its end.</summary>
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        if (_remaining == 0 || buffer.Length == 0)
        {
            return 0;
        }

        int wanted = (int)Math.Min(buffer.Length, _remaining);
        int read = await stream.ReadAsync(buffer[..wanted], ct).ConfigureAwait(false);
        if (read == 0)
        {
            throw Invalid(_offset, $"the archive ends inside {_last}'s data");
        }

        _offset += read;
        _remaining -= read;
        return read;
    }

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes of the current entry's data.</summary>
    public async ValueTask ReadExactlyAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        if (buffer.Length > _remaining)
        {
            throw Invalid(_offset, $"{_last}'s data is shorter than its sparse map says");
        }

        while (buffer.Length > 0)
        {
            int read = await ReadAsync(buffer, ct).ConfigureAwait(false);
            buffer = buffer[read..];
        }
    }

    private async ValueTask<TarHeader> BuildAsync(byte type, long size, long headerOffset, List<(byte[] Key, byte[] Value)>? pax,
        byte[]? longName, byte[]? longLink, CancellationToken ct)
    {
        ReadOnlySpan<byte> block = _block;
        var header = new TarHeader
        {
            TypeFlag = type,
            Name = TarHeaderBlock.String(block[TarHeaderBlock.Name]),
            LinkName = TarHeaderBlock.String(block[TarHeaderBlock.LinkName]),
            Mode = (uint)(Number(TarHeaderBlock.Mode, "mode", headerOffset) & 0xFFF /* 07777 */),
            Uid = Id(Number(TarHeaderBlock.Uid, "uid", headerOffset), "uid", headerOffset),
            Gid = Id(Number(TarHeaderBlock.Gid, "gid", headerOffset), "gid", headerOffset),
            MtimeSeconds = Number(TarHeaderBlock.Mtime, "mtime", headerOffset),
        };
        bool ustar = TarHeaderBlock.IsUstar(block);
        bool gnu = TarHeaderBlock.IsGnu(block);
        if (ustar || gnu)
        {
            header.DevMajor = Device(Number(TarHeaderBlock.DevMajor, "devmajor", headerOffset), headerOffset);
            header.DevMinor = Device(Number(TarHeaderBlock.DevMinor, "devminor", headerOffset), headerOffset);
        }

        if (ustar && block[TarHeaderBlock.Prefix][0] != 0)
        {
            header.Name = ByteNames.Join(TarHeaderBlock.String(block[TarHeaderBlock.Prefix]), header.Name);
        }

        header.Name = longName ?? header.Name;
        header.LinkName = longLink ?? header.LinkName;

        List<SparseSegment>? sparse = null;
        long realSize = size;
        if (type == TarTypeFlag.GnuSparse)
        {
            if (!gnu)
            {
                throw Invalid(headerOffset, "a GNU sparse entry without GNU magic");
            }

            sparse = [];
            AddGnuPairs(sparse, block[TarHeaderBlock.GnuSparseOffset..], TarHeaderBlock.GnuSparsePairs, headerOffset);
            realSize = Number(TarHeaderBlock.GnuRealSize, "realsize", headerOffset);
            bool extended = block[TarHeaderBlock.GnuIsExtended] != 0;
            byte[] extension = new byte[TarHeaderBlock.Size];
            while (extended)
            {
                long at = _offset;
                await ReadBlockAsync(extension, endAllowed: false, ct).ConfigureAwait(false);
                AddGnuPairs(sparse, extension, TarHeaderBlock.GnuExtensionPairs, at);
                extended = extension[TarHeaderBlock.GnuExtensionIsExtended] != 0;
            }

            type = TarTypeFlag.Regular;
        }

        // pax records override the header's fields (POSIX.1-2001 "pax Extended Header").
        byte[]? sparseName = null;
        long? sparseMajor = null;
        long? sparseMinor = null;
        long? sparseSize = null;
        List<long>? sparseNumbers = null;
        foreach ((byte[] key, byte[] value) in pax ?? [])
        {
            string where = Where(headerOffset);
            ReadOnlySpan<byte> k = key;
            if (k.SequenceEqual("path"u8))
            {
                header.Name = value;
            }
            else if (k.SequenceEqual("linkpath"u8))
            {
                header.LinkName = value;
            }
            else if (k.SequenceEqual("size"u8))
            {
                size = PaxRecords.ParseNumber(value, "size", where);
                realSize = size;
            }
            else if (k.SequenceEqual("uid"u8))
            {
                header.Uid = Id(PaxRecords.ParseNumber(value, "uid", where), "uid", headerOffset);
            }
            else if (k.SequenceEqual("gid"u8))
            {
                header.Gid = Id(PaxRecords.ParseNumber(value, "gid", where), "gid", headerOffset);
            }
            else if (k.SequenceEqual("mtime"u8))
            {
                (header.MtimeSeconds, header.MtimeNanoseconds) = PaxRecords.ParseTime(value, where);
            }
            else if (k.StartsWith("SCHILY.xattr."u8))
            {
                byte[] name = key["SCHILY.xattr.".Length..];
                if (name.Length == 0 || name.Contains((byte)0))
                {
                    throw Invalid(headerOffset, "an xattr record with an empty name or a NUL in its name");
                }

                header.Xattrs[name] = value;
            }
            else if (k.SequenceEqual("GNU.sparse.name"u8))
            {
                sparseName = value;
            }
            else if (k.SequenceEqual("GNU.sparse.major"u8))
            {
                sparseMajor = PaxRecords.ParseNumber(value, "GNU.sparse.major", where);
            }
            else if (k.SequenceEqual("GNU.sparse.minor"u8))
            {
                sparseMinor = PaxRecords.ParseNumber(value, "GNU.sparse.minor", where);
            }
            else if (k.SequenceEqual("GNU.sparse.size"u8) || k.SequenceEqual("GNU.sparse.realsize"u8))
            {
                sparseSize = PaxRecords.ParseNumber(value, Encoding.ASCII.GetString(key), where);
            }
            else if (k.SequenceEqual("GNU.sparse.offset"u8) || k.SequenceEqual("GNU.sparse.numbytes"u8))
            {
                // 0.0: pairs of records, offset then numbytes.
                sparseNumbers ??= [];
                bool isOffset = k.SequenceEqual("GNU.sparse.offset"u8);
                if (isOffset != (sparseNumbers.Count % 2 == 0))
                {
                    throw Invalid(headerOffset, "GNU.sparse.offset and GNU.sparse.numbytes records do not alternate");
                }

                sparseNumbers.Add(PaxRecords.ParseNumber(value, Encoding.ASCII.GetString(key), where));
                CheckSparseCount(sparseNumbers.Count / 2, headerOffset);
            }
            else if (k.SequenceEqual("GNU.sparse.map"u8))
            {
                // 0.1: "offset,numbytes,offset,numbytes...".
                sparseNumbers = [];
                if (value.Length > 0)
                {
                    foreach (Range range in value.AsSpan().Split((byte)','))
                    {
                        sparseNumbers.Add(PaxRecords.ParseNumber(value.AsSpan()[range], "GNU.sparse.map", where));
                        CheckSparseCount(sparseNumbers.Count / 2, headerOffset);
                    }
                }
            }
        }

        if (sparseName is not null)
        {
            header.Name = sparseName;
        }

        if (sparseMajor is not null || sparseNumbers is not null)
        {
            if (type is not (TarTypeFlag.Regular or TarTypeFlag.RegularOld))
            {
                throw Invalid(headerOffset, $"a pax sparse map on an entry of type {TarTypeFlag.Describe(type)}");
            }

            realSize = sparseSize ?? throw Invalid(headerOffset, "a pax sparse entry without GNU.sparse.size or GNU.sparse.realsize");
            if (sparseMajor == 1 && sparseMinor == 0)
            {
                // 1.0: the map is text at the start of the data, decimal numbers each ended by a newline (count,
                // then offset and numbytes pairs), padded to a block; the entry's size counts it.
                _remaining = size;
                (sparse, long mapBytes) = await ReadSparseMapAsync(headerOffset, ct).ConfigureAwait(false);
                size -= mapBytes;
            }
            else if (sparseMajor is null or 0 && sparseNumbers is not null)
            {
                if (sparseNumbers.Count % 2 != 0)
                {
                    throw Invalid(headerOffset, "a pax sparse map with an odd count of numbers");
                }

                sparse = [];
                for (int i = 0; i < sparseNumbers.Count; i += 2)
                {
                    sparse.Add(new SparseSegment(sparseNumbers[i], sparseNumbers[i + 1]));
                }
            }
            else
            {
                throw Invalid(headerOffset, $"pax sparse format {sparseMajor}.{sparseMinor} is not known");
            }
        }

        if (size < 0 || realSize < 0)
        {
            throw Invalid(headerOffset, "a negative size");
        }

        if (type == TarTypeFlag.RegularOld)
        {
            type = header.Name.Length > 0 && header.Name[^1] == '/' ? TarTypeFlag.Directory : TarTypeFlag.Regular;
        }

        header.TypeFlag = type;
        if (TarTypeFlag.IsHeaderOnly(type))
        {
            size = 0;
            realSize = 0;
        }

        if (sparse is not null)
        {
            CheckSparse(sparse, size, realSize, headerOffset);
        }

        header.Size = size;
        header.RealSize = realSize;
        header.Sparse = sparse;
        _remaining = size;
        _padding = Padding(_offset + size);
        return header;
    }

    // Reads the pax sparse 1.0 map at the start of the entry's data; returns it and the bytes it took (a multiple of
    // 512). Bounded: at most MaxSparseSegments regions, each number at most 20 digits.
    private async ValueTask<(List<SparseSegment>, long)> ReadSparseMapAsync(long headerOffset, CancellationToken ct)
    {
        byte[] block = new byte[TarHeaderBlock.Size];
        int used = block.Length;
        long consumed = 0;
        async ValueTask<long> NextNumberAsync()
        {
            long value = 0;
            int digits = 0;
            while (true)
            {
                if (used == block.Length)
                {
                    if (_remaining < block.Length)
                    {
                        throw Invalid(headerOffset, "the pax sparse 1.0 map runs past the entry's data");
                    }

                    await ReadExactlyAsync(block, ct).ConfigureAwait(false);
                    consumed += block.Length;
                    used = 0;
                }

                byte c = block[used++];
                if (c == '\n' && digits > 0)
                {
                    return value;
                }

                if (c is < (byte)'0' or > (byte)'9' || ++digits > 19)
                {
                    throw Invalid(headerOffset, "the pax sparse 1.0 map is not decimal numbers on lines");
                }

                value = (value * 10) + (c - '0');
            }
        }

        long count = await NextNumberAsync().ConfigureAwait(false);
        CheckSparseCount(count, headerOffset);
        var sparse = new List<SparseSegment>((int)count);
        for (long i = 0; i < count; i++)
        {
            long offset = await NextNumberAsync().ConfigureAwait(false);
            long length = await NextNumberAsync().ConfigureAwait(false);
            sparse.Add(new SparseSegment(offset, length));
        }

        return (sparse, consumed);
    }

    private void AddGnuPairs(List<SparseSegment> sparse, ReadOnlySpan<byte> pairs, int count, long at)
    {
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> pair = pairs.Slice(i * 24, 24);
            if (pair[0] == 0)
            {
                break; // an unused slot
            }

            if (!TarHeaderBlock.TryParseNumber(pair[..12], out long offset) || !TarHeaderBlock.TryParseNumber(pair[12..], out long length))
            {
                throw Invalid(at, "a GNU sparse map entry is not a number");
            }

            sparse.Add(new SparseSegment(offset, length));
            CheckSparseCount(sparse.Count, at);
        }
    }

    private void CheckSparseCount(long count, long at)
    {
        if (count > MaxSparseSegments)
        {
            throw Invalid(at, $"a sparse map of more than {MaxSparseSegments} regions");
        }
    }

    // archive/tar's validateSparseEntries: regions in order, not overlapping, inside the real size; their data
    // is what the archive stores.
    private void CheckSparse(List<SparseSegment> sparse, long size, long realSize, long at)
    {
        long end = 0;
        long stored = 0;
        foreach (SparseSegment segment in sparse)
        {
            if (segment.Offset < end || segment.Length < 0 || segment.Offset > realSize || segment.Length > realSize - segment.Offset)
            {
                throw Invalid(at, $"sparse region {segment.Offset}+{segment.Length} overlaps another or lies outside the file's {realSize} bytes");
            }

            end = segment.Offset + segment.Length;
            stored += segment.Length;
        }

        if (stored != size)
        {
            throw Invalid(at, $"the sparse map holds {stored} bytes of data but the entry stores {size}");
        }
    }

    private async ValueTask<byte[]> ReadExtensionAsync(byte type, long size, long headerOffset, CancellationToken ct)
    {
        if (size > MaxHeaderBytes)
        {
            string kind = type is TarTypeFlag.GnuLongName or TarTypeFlag.GnuLongLink ? "GNU long name/link" : "PAX";
            throw Invalid(headerOffset, $"a {kind} header of {size} bytes is over the {MaxHeaderBytes / (1 << 20)} MiB limit");
        }

        byte[] data = new byte[size];
        int done = 0;
        while (done < data.Length)
        {
            int read = await stream.ReadAsync(data.AsMemory(done), ct).ConfigureAwait(false);
            if (read == 0)
            {
                throw Invalid(_offset, "the archive ends inside an extension header");
            }

            done += read;
            _offset += read;
        }

        await SkipAsync(Padding(_offset), ct).ConfigureAwait(false);
        return data;
    }

    private async ValueTask<bool> ReadBlockAsync(byte[] block, bool endAllowed, CancellationToken ct)
    {
        int done = 0;
        while (done < block.Length)
        {
            int read = await stream.ReadAsync(block.AsMemory(done), ct).ConfigureAwait(false);
            if (read == 0)
            {
                if (done == 0 && endAllowed)
                {
                    return false;
                }

                throw Invalid(_offset, $"the archive ends inside a header (after {_last})");
            }

            done += read;
            _offset += read;
        }

        return true;
    }

    private async ValueTask SkipAsync(long count, CancellationToken ct)
    {
        if (count == 0)
        {
            return;
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(count, 1 << 16));
        try
        {
            while (count > 0)
            {
                int read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(count, buffer.Length)), ct).ConfigureAwait(false);
                if (read == 0)
                {
                    throw Invalid(_offset, $"the archive ends inside {_last}'s data");
                }

                count -= read;
                _offset += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private long Number(Range field, string name, long headerOffset) =>
        TarHeaderBlock.TryParseNumber(_block.AsSpan()[field], out long value)
            ? value
            : throw Invalid(headerOffset, $"the {name} field is not a number");

    private int Id(long value, string name, long headerOffset) =>
        value is >= 0 and <= int.MaxValue ? (int)value : throw Invalid(headerOffset, $"{name} {value} is out of range");

    private uint Device(long value, long headerOffset) =>
        value is >= 0 and <= uint.MaxValue ? (uint)value : throw Invalid(headerOffset, $"device number {value} is out of range");

    private static int Padding(long offset) => (int)((TarHeaderBlock.Size - (offset % TarHeaderBlock.Size)) % TarHeaderBlock.Size);

    private string Where(long headerOffset) => $"entry {_index + 1} (header at byte {headerOffset}, after {_last})";

    private BlockDriverException Invalid(long headerOffset, string what) =>
        new(ErrorKind.InvalidArgument, $"layer tar: {Where(headerOffset)}: {what}.");
}
