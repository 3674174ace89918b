using System.Buffers;
using BlockDriver.Interop;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Mount.Tar;

/// <summary>Writes the layer tar of a layer's differences from its parent (Docker's Diff): the added and modified
/// paths with their content and metadata (pax: raw byte names and link targets, owners, nanosecond times, xattrs
/// as bytes, device numbers), hard links kept as links, sparse files as pax sparse 1.0 with their holes, and a
/// <c>.wh.NAME</c> whiteout for every deleted path.</summary>
/// <remarks>Walks the trees once (<see cref="LayerChanges"/>'s walk): every entry is read through the open
/// directory holding it, a file opened with O_NOFOLLOW, never a path. File content is streamed.</remarks>
public static class LayerTarWriter
{
    private const int BufferSize = 1 << 20;

    /// <summary>Writes the differences from <paramref name="parentRoot"/> (null: everything, a base layer's tar) to
    /// <paramref name="layerRoot"/> into <paramref name="output"/>; returns the changes written.</summary>
    public static async Task<IReadOnlyList<LayerChange>> WriteDiffAsync(string? parentRoot, string layerRoot, Stream output, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(output);
        using DirectoryHandle layer = DirectoryHandle.OpenRoot(layerRoot);
        using DirectoryHandle? parent = parentRoot is null ? null : DirectoryHandle.OpenRoot(parentRoot);
        var tar = new LayerTarOutput(output);
        var changes = new List<LayerChange>();
        var links = new Dictionary<(uint, uint, ulong), byte[]>();
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            foreach (WalkItem item in LayerWalk.Changes(parent, layer))
            {
                changes.Add(item.Change);
                byte[] name = item.Change.RawPath[1..];
                if (item.Change.Kind == ChangeKind.Deleted)
                {
                    (byte[] directory, byte[] file) = ByteNames.Split(name);
                    await tar.WriteHeaderAsync(new TarHeader { Name = ByteNames.Join(directory, [.. TarPaths.WhiteoutPrefix, .. file]) }, ct).ConfigureAwait(false);
                    continue;
                }

                await WriteEntryAsync(tar, item, name, links, buffer, ct).ConfigureAwait(false);
            }

            await tar.FinishAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return changes;
    }

    private static async Task WriteEntryAsync(LayerTarOutput tar, WalkItem item, byte[] name,
        Dictionary<(uint, uint, ulong), byte[]> links, byte[] buffer, CancellationToken ct)
    {
        FileStat stat = item.Stat!.Value;
        byte? type = stat.Type switch
        {
            FsNative.SIfDir => TarTypeFlag.Directory,
            FsNative.SIfLnk => TarTypeFlag.Symlink,
            FsNative.SIfChr => TarTypeFlag.CharDevice,
            FsNative.SIfBlk => TarTypeFlag.BlockDevice,
            FsNative.SIfIfo => TarTypeFlag.Fifo,
            FsNative.SIfReg => TarTypeFlag.Regular,
            _ => null, // sockets cannot be put in a tar; Docker leaves them out too
        };
        if (type is null)
        {
            return;
        }

        var header = new TarHeader
        {
            Name = type == TarTypeFlag.Directory ? [.. name, (byte)'/'] : name,
            TypeFlag = type.Value,
            Mode = stat.Mode & 0xFFF, // 07777
            Uid = stat.Uid,
            Gid = stat.Gid,
            MtimeSeconds = stat.MtimeSeconds,
            MtimeNanoseconds = stat.MtimeNanoseconds,
        };
        foreach ((byte[] key, byte[] value) in TarFs.ExtendedAttributes(item.Directory, item.Name))
        {
            header.Xattrs[key] = value;
        }

        // Hard links (moby's addTarFile: any non-directory with more than one link) as links to the first name.
        if (type != TarTypeFlag.Directory && stat.Links > 1)
        {
            var key = (stat.DevMajor, stat.DevMinor, stat.Inode);
            if (links.TryGetValue(key, out byte[]? first))
            {
                header.TypeFlag = TarTypeFlag.HardLink;
                header.LinkName = first;
                await tar.WriteHeaderAsync(header, ct).ConfigureAwait(false);
                return;
            }

            links[key] = name;
        }

        switch (type)
        {
            case TarTypeFlag.Symlink:
                header.LinkName = TarFs.ReadLink(item.Directory, item.Name);
                break;
            case TarTypeFlag.CharDevice or TarTypeFlag.BlockDevice:
                header.DevMajor = stat.RdevMajor;
                header.DevMinor = stat.RdevMinor;
                break;
            case TarTypeFlag.Regular:
                await WriteFileAsync(tar, item, header, buffer, ct).ConfigureAwait(false);
                return;
        }

        await tar.WriteHeaderAsync(header, ct).ConfigureAwait(false);
    }

    private static async Task WriteFileAsync(LayerTarOutput tar, WalkItem item, TarHeader header, byte[] buffer, CancellationToken ct)
    {
        int fd = FsNative.Openat(item.Directory.Fd, item.Name, FsNative.ORdOnly | FsNative.ONoFollow | FsNative.OCloExec, 0);
        if (fd < 0)
        {
            throw new IOException($"{header.DisplayName}: open: {Errno.Message(Errno.Last)}.");
        }

        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        FileStat stat = FileStat.OfFd(fd);
        if (!stat.IsRegular)
        {
            throw new IOException($"{header.DisplayName}: replaced by another kind of file while the diff was written.");
        }

        // Fewer blocks than the size needs: look for holes (SEEK_DATA/SEEK_HOLE) and keep them.
        List<SparseSegment>? segments = stat.Blocks * 512 < stat.Size ? DataSegments(fd, stat.Size) : null;
        if (segments is not null && !(segments.Count == 1 && segments[0] == new SparseSegment(0, stat.Size)))
        {
            header.Size = segments.Sum(s => s.Length);
            if (segments.Count == 0 || segments[^1].Offset + segments[^1].Length < stat.Size)
            {
                segments.Add(new SparseSegment(stat.Size, 0)); // GNU tar ends a map with a trailing hole like this
            }

            header.Sparse = segments;
        }
        else
        {
            segments = [new SparseSegment(0, stat.Size)];
            header.Size = stat.Size;
        }

        header.RealSize = stat.Size;
        await tar.WriteHeaderAsync(header, ct).ConfigureAwait(false);
        foreach (SparseSegment segment in segments)
        {
            for (long done = 0; done < segment.Length;)
            {
                int wanted = (int)Math.Min(buffer.Length, segment.Length - done);
                int read = await RandomAccess.ReadAsync(handle, buffer.AsMemory(0, wanted), segment.Offset + done, ct).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new IOException($"{header.DisplayName}: shrank while the diff was written ({segment.Offset + done} of {header.RealSize} bytes).");
                }

                await tar.WriteDataAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
                done += read;
            }
        }
    }

    // The data regions of a file with holes, from SEEK_DATA/SEEK_HOLE; null when the file system cannot say.
    private static List<SparseSegment>? DataSegments(int fd, long size)
    {
        var segments = new List<SparseSegment>();
        long offset = 0;
        while (offset < size)
        {
            long data = FsNative.Lseek(fd, offset, FsNative.SeekData);
            if (data < 0)
            {
                if (Errno.Last == Errno.ENXIO)
                {
                    break; // only a hole from here to the end
                }

                return null;
            }

            long hole = FsNative.Lseek(fd, data, FsNative.SeekHole);
            if (hole < 0)
            {
                return null;
            }

            hole = Math.Min(hole, size);
            segments.Add(new SparseSegment(data, hole - data));
            offset = hole;
            if (segments.Count > LayerTarReader.MaxSparseSegments)
            {
                return null; // too fragmented for a map a reader takes: written whole
            }
        }

        return segments;
    }
}
