using System.Globalization;
using System.Text;

namespace BlockDriver.Mount.Tar;

/// <summary>Writes a pax tar (POSIX.1-2001) entry by entry with names as bytes: a ustar header, preceded by an 'x'
/// header when something does not fit it (a name or link target over 100 bytes, an id over 7 octal digits, a size
/// of 8 GiB or more, a time with nanoseconds or out of octal range, xattrs, a sparse map). Sparse files are written
/// in GNU's pax sparse format 1.0 (the map as text at the start of the data). Not thread-safe; does not own the
/// stream.</summary>
internal sealed class LayerTarOutput(Stream stream)
{
    private static readonly byte[] Zeros = new byte[TarHeaderBlock.Size * 2];
    private long _remaining;
    private long _written;

    /// <summary>Writes the headers of <paramref name="header"/>; its <see cref="TarHeader.Size"/> bytes of data
    /// (for a sparse file the regions of <see cref="TarHeader.Sparse"/> one after the other) follow through
    /// <see cref="WriteDataAsync"/>.</summary>
    public async ValueTask WriteHeaderAsync(TarHeader header, CancellationToken ct = default)
    {
        if (_remaining != 0)
        {
            throw new InvalidOperationException($"{_remaining} bytes of the previous entry's data were not written.");
        }

        var records = new List<(byte[], byte[])>();
        byte[] name = header.Name;
        byte[] mapText = [];
        long dataSize = TarTypeFlag.IsHeaderOnly(header.TypeFlag) ? 0 : header.Size;
        if (header.Sparse is { } sparse)
        {
            // pax sparse 1.0 (GNU tar's --sparse-version=1.0): the real name in GNU.sparse.name, the header's name
            // DIR/GNUSparseFile.0/NAME for readers that do not know it; the map text counts in the size.
            var map = new StringBuilder();
            map.Append(CultureInfo.InvariantCulture, $"{sparse.Count}\n");
            foreach (SparseSegment segment in sparse)
            {
                map.Append(CultureInfo.InvariantCulture, $"{segment.Offset}\n{segment.Length}\n");
            }

            mapText = Encoding.ASCII.GetBytes(map.ToString());
            long mapBlocks = (mapText.Length + TarHeaderBlock.Size - 1) / TarHeaderBlock.Size * TarHeaderBlock.Size;
            Array.Resize(ref mapText, (int)mapBlocks);
            dataSize = mapBlocks + header.Size;
            records.Add(("GNU.sparse.major"u8.ToArray(), "1"u8.ToArray()));
            records.Add(("GNU.sparse.minor"u8.ToArray(), "0"u8.ToArray()));
            records.Add(("GNU.sparse.name"u8.ToArray(), header.Name));
            records.Add(("GNU.sparse.realsize"u8.ToArray(), Encoding.ASCII.GetBytes(header.RealSize.ToString(CultureInfo.InvariantCulture))));
            (byte[] directory, byte[] leaf) = ByteNames.Split(header.Name);
            name = ByteNames.Join(directory, [.. "GNUSparseFile.0/"u8, .. leaf]);
        }

        if (name.Length > 100)
        {
            records.Add(("path"u8.ToArray(), name));
        }

        if (header.LinkName.Length > 100)
        {
            records.Add(("linkpath"u8.ToArray(), header.LinkName));
        }

        if (!TarHeaderBlock.FitsOctal(header.Uid, 8))
        {
            records.Add(("uid"u8.ToArray(), Ascii(header.Uid)));
        }

        if (!TarHeaderBlock.FitsOctal(header.Gid, 8))
        {
            records.Add(("gid"u8.ToArray(), Ascii(header.Gid)));
        }

        if (!TarHeaderBlock.FitsOctal(dataSize, 12))
        {
            records.Add(("size"u8.ToArray(), Ascii(dataSize)));
        }

        if (header.MtimeNanoseconds != 0 || !TarHeaderBlock.FitsOctal(header.MtimeSeconds, 12))
        {
            records.Add(("mtime"u8.ToArray(), PaxRecords.FormatTime(header.MtimeSeconds, header.MtimeNanoseconds)));
        }

        foreach ((byte[] key, byte[] value) in header.Xattrs)
        {
            records.Add(([.. "SCHILY.xattr."u8, .. key], value));
        }

        if (records.Count > 0)
        {
            byte[] data = PaxRecords.Format(records);
            if (data.Length > LayerTarReader.MaxHeaderBytes)
            {
                throw new IOException($"{header.DisplayName}: its PAX header would be {data.Length} bytes, over the {LayerTarReader.MaxHeaderBytes} bytes a reader takes.");
            }

            byte[] pax = Block("././@PaxHeader"u8, TarTypeFlag.PaxExtended, 0x1A4 /* 0644 */, 0, 0, data.Length, 0, [], 0, 0);
            await stream.WriteAsync(pax, ct).ConfigureAwait(false);
            await stream.WriteAsync(data, ct).ConfigureAwait(false);
            await PadAsync(data.Length, ct).ConfigureAwait(false);
        }

        byte[] block = Block(name, header.TypeFlag, header.Mode, header.Uid, header.Gid, dataSize, header.MtimeSeconds,
            header.LinkName, header.DevMajor, header.DevMinor);
        await stream.WriteAsync(block, ct).ConfigureAwait(false);
        if (mapText.Length > 0)
        {
            await stream.WriteAsync(mapText, ct).ConfigureAwait(false);
        }

        _remaining = dataSize - mapText.Length;
        _written = dataSize;
        if (_remaining == 0)
        {
            await PadAsync(_written, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Writes data of the current entry; after the last byte of it, its padding.</summary>
    public async ValueTask WriteDataAsync(ReadOnlyMemory<byte> data, CancellationToken ct = default)
    {
        if (data.Length > _remaining)
        {
            throw new InvalidOperationException($"{data.Length} bytes written where {_remaining} remain of the entry's data.");
        }

        await stream.WriteAsync(data, ct).ConfigureAwait(false);
        _remaining -= data.Length;
        if (_remaining == 0)
        {
            await PadAsync(_written, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Bytes of the current entry's data still to write.</summary>
    public long Remaining => _remaining;

    /// <summary>Ends the archive: two zero blocks.</summary>
    public async ValueTask FinishAsync(CancellationToken ct = default)
    {
        if (_remaining != 0)
        {
            throw new InvalidOperationException($"{_remaining} bytes of the last entry's data were not written.");
        }

        await stream.WriteAsync(Zeros, ct).ConfigureAwait(false);
    }

    private static byte[] Block(ReadOnlySpan<byte> name, byte type, uint mode, long uid, long gid, long size, long mtime,
        ReadOnlySpan<byte> linkName, uint devMajor, uint devMinor)
    {
        byte[] block = new byte[TarHeaderBlock.Size];
        Span<byte> b = block;
        name[..Math.Min(name.Length, 100)].CopyTo(b[TarHeaderBlock.Name]);
        TarHeaderBlock.WriteNumber(b[TarHeaderBlock.Mode], mode & 0xFFF);
        TarHeaderBlock.WriteNumber(b[TarHeaderBlock.Uid], TarHeaderBlock.FitsOctal(uid, 8) ? uid : 0);
        TarHeaderBlock.WriteNumber(b[TarHeaderBlock.Gid], TarHeaderBlock.FitsOctal(gid, 8) ? gid : 0);
        TarHeaderBlock.WriteNumber(b[TarHeaderBlock.FileSize], TarHeaderBlock.FitsOctal(size, 12) ? size : 0);
        TarHeaderBlock.WriteNumber(b[TarHeaderBlock.Mtime], TarHeaderBlock.FitsOctal(mtime, 12) ? mtime : 0);
        b[TarHeaderBlock.TypeFlag] = type;
        linkName[..Math.Min(linkName.Length, 100)].CopyTo(b[TarHeaderBlock.LinkName]);
        "ustar\0"u8.CopyTo(b[TarHeaderBlock.Magic]);
        "00"u8.CopyTo(b[TarHeaderBlock.Version]);
        TarHeaderBlock.WriteNumber(b[TarHeaderBlock.DevMajor], devMajor);
        TarHeaderBlock.WriteNumber(b[TarHeaderBlock.DevMinor], devMinor);
        TarHeaderBlock.WriteChecksum(b);
        return block;
    }

    private async ValueTask PadAsync(long written, CancellationToken ct)
    {
        int padding = (int)((TarHeaderBlock.Size - (written % TarHeaderBlock.Size)) % TarHeaderBlock.Size);
        if (padding > 0)
        {
            await stream.WriteAsync(Zeros.AsMemory(0, padding), ct).ConfigureAwait(false);
        }
    }

    private static byte[] Ascii(long value) => Encoding.ASCII.GetBytes(value.ToString(CultureInfo.InvariantCulture));
}
