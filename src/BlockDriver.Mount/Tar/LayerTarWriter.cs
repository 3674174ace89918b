using System.Formats.Tar;
using System.Text;

namespace BlockDriver.Mount.Tar;

/// <summary>Writes the layer tar of a layer's differences from its parent (Docker's Diff): the added and modified
/// paths with their content and metadata (PAX: owners, nanosecond times, xattrs, device numbers), hard links kept
/// as links, and a <c>.wh.NAME</c> whiteout for every deleted path.</summary>
public static class LayerTarWriter
{
    /// <summary>Writes the differences from <paramref name="parentRoot"/> (null: everything, a base layer's tar) to
    /// <paramref name="layerRoot"/> into <paramref name="output"/>; returns the changes written.</summary>
    public static async Task<IReadOnlyList<LayerChange>> WriteDiffAsync(string? parentRoot, string layerRoot, Stream output, CancellationToken ct = default)
    {
        IReadOnlyList<LayerChange> changes = LayerChanges.Compute(parentRoot, layerRoot);
        using DirectoryHandle root = DirectoryHandle.OpenRoot(layerRoot);
        var writer = new TarWriter(output, TarEntryFormat.Pax, leaveOpen: true);
        await using (writer.ConfigureAwait(false))
        {
            var links = new Dictionary<(ulong Inode, uint Device), string>();
            foreach (LayerChange change in changes)
            {
                string name = change.Path.TrimStart('/');
                if (change.Kind == ChangeKind.Deleted)
                {
                    (string directory, string file) = TarPaths.Split(name);
                    string whiteout = (directory.Length == 0 ? "" : directory + "/") + TarPaths.WhiteoutPrefix + file;
                    await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, whiteout) { ModificationTime = DateTimeOffset.UnixEpoch }, ct).ConfigureAwait(false);
                    continue;
                }

                (string dir, string leaf) = TarPaths.Split(name);
                using DirectoryHandle parent = DirectoryHandle.Open(root, dir, create: false)
                    ?? throw new IOException($"{change.Path}: vanished while writing the diff.");
                FileStat stat = FileStat.Require(parent.Fd, leaf);
                await WriteEntryAsync(writer, parent, leaf, name, stat, links, ct).ConfigureAwait(false);
            }
        }

        // TarWriter writes the end-of-archive blocks only after an entry; a layer without changes is still a tar (two
        // zero blocks, as Go's archive/tar writes it), which dockerd stores as the empty layer of a CMD-only step.
        if (changes.Count == 0)
        {
            await output.WriteAsync(new byte[2 * 512], ct).ConfigureAwait(false);
        }

        return changes;
    }

    private static async Task WriteEntryAsync(TarWriter writer, DirectoryHandle parent, string leaf, string name, FileStat stat,
        Dictionary<(ulong, uint), string> links, CancellationToken ct)
    {
        Dictionary<string, string> attributes = TarFs.ExtendedAttributes(parent, leaf)
            .ToDictionary(a => "SCHILY.xattr." + a.Key, a => Encoding.UTF8.GetString(a.Value), StringComparer.Ordinal);
        TarEntryType? known = stat.Type switch
        {
            FsNative.SIfDir => TarEntryType.Directory,
            FsNative.SIfLnk => TarEntryType.SymbolicLink,
            FsNative.SIfChr => TarEntryType.CharacterDevice,
            FsNative.SIfBlk => TarEntryType.BlockDevice,
            FsNative.SIfIfo => TarEntryType.Fifo,
            FsNative.SIfReg => TarEntryType.RegularFile,
            _ => null, // sockets cannot be put in a tar; Docker leaves them out too
        };
        if (known is not TarEntryType type)
        {
            return;
        }

        if (type == TarEntryType.RegularFile && stat.Links > 1)
        {
            if (links.TryGetValue((stat.Inode, stat.DevMinor), out string? first))
            {
                await writer.WriteEntryAsync(Describe(new PaxTarEntry(TarEntryType.HardLink, name, attributes) { LinkName = first }, stat), ct).ConfigureAwait(false);
                return;
            }

            links[(stat.Inode, stat.DevMinor)] = name;
        }

        var entry = new PaxTarEntry(type, type == TarEntryType.Directory ? name + "/" : name, attributes);
        Describe(entry, stat);
        if (type == TarEntryType.SymbolicLink)
        {
            entry.LinkName = TarFs.ReadLink(parent, leaf);
        }
        else if (type is TarEntryType.CharacterDevice or TarEntryType.BlockDevice)
        {
            entry.DeviceMajor = (int)stat.RdevMajor;
            entry.DeviceMinor = (int)stat.RdevMinor;
        }

        if (type == TarEntryType.RegularFile)
        {
            int fd = FsNative.Openat(parent.Fd, leaf, FsNative.ORdOnly | FsNative.ONoFollow | FsNative.OCloExec, 0);
            if (fd < 0)
            {
                throw new IOException($"{name}: open: {FsNative.Describe(FsNative.LastError)}.");
            }

            using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
            using var content = new FileStream(handle, FileAccess.Read, bufferSize: 1 << 20);
            entry.DataStream = content;
            await writer.WriteEntryAsync(entry, ct).ConfigureAwait(false);
            return;
        }

        await writer.WriteEntryAsync(entry, ct).ConfigureAwait(false);
    }

    private static PaxTarEntry Describe(PaxTarEntry entry, FileStat stat)
    {
        entry.Mode = (UnixFileMode)(stat.Mode & 0xFFF /* 07777 */);
        entry.Uid = stat.Uid;
        entry.Gid = stat.Gid;
        entry.ModificationTime = DateTimeOffset.FromUnixTimeSeconds(stat.MtimeSeconds).AddTicks(stat.MtimeNanoseconds / 100);
        return entry;
    }
}
