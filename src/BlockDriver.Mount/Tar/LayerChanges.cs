namespace BlockDriver.Mount.Tar;

/// <summary>Compares two mounted trees, a layer and its parent, as Docker's naive differ does: a path only in the
/// layer is added, only in the parent deleted (its subtree is not listed), in both but with a different type, size,
/// owner, mode, modification time, device number, link target or extended attributes modified (a directory whose
/// entries changed has a new modification time, so it shows as modified too). Symbolic links are never followed;
/// names are compared as bytes; the walk is iterative and refuses trees deeper than
/// <see cref="TarPaths.MaxDepth"/> levels (InvalidArgument).</summary>
public static class LayerChanges
{
    /// <summary>The changes from <paramref name="parentRoot"/> (null: an empty tree) to <paramref name="layerRoot"/>,
    /// parents before children, names in byte order.</summary>
    public static IReadOnlyList<LayerChange> Compute(string? parentRoot, string layerRoot)
    {
        using DirectoryHandle layer = DirectoryHandle.OpenRoot(layerRoot);
        using DirectoryHandle? parent = parentRoot is null ? null : DirectoryHandle.OpenRoot(parentRoot);
        return [.. LayerWalk.Changes(parent, layer).Select(i => i.Change)];
    }

    /// <summary>Bytes of regular-file content added or modified: Docker's DiffSize. Every stat is made inside the
    /// layer root on an open directory, never through a path that could follow a link out of it.</summary>
    public static long Size(string layerRoot, IEnumerable<LayerChange> changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var counted = new HashSet<byte[]>(changes.Where(c => c.Kind != ChangeKind.Deleted).Select(c => c.RawPath), ByteNames.Comparer);
        if (counted.Count == 0)
        {
            return 0;
        }

        using DirectoryHandle layer = DirectoryHandle.OpenRoot(layerRoot);
        long size = 0;
        foreach ((byte[] path, FileStat stat) in LayerWalk.Entries(layer))
        {
            if (stat.IsRegular && counted.Contains(path))
            {
                size += stat.Size;
            }
        }

        return size;
    }

    /// <summary>Docker's DiffSize of <paramref name="layerRoot"/> over <paramref name="parentRoot"/> in one walk, counted
    /// as overlay2 counts its upper directory (moby's directory.Size): every added or modified entry that is not a
    /// directory by its st_size (a symbolic link by its target's length, a device or FIFO as 0), an inode with
    /// several links once.</summary>
    public static long DiffSize(string? parentRoot, string layerRoot)
    {
        using DirectoryHandle layer = DirectoryHandle.OpenRoot(layerRoot);
        using DirectoryHandle? parent = parentRoot is null ? null : DirectoryHandle.OpenRoot(parentRoot);
        var linked = new HashSet<ulong>();
        long size = 0;
        foreach (WalkItem item in LayerWalk.Changes(parent, layer))
        {
            if (item.Stat is not { IsDirectory: false } stat || (stat.Links > 1 && !linked.Add(stat.Inode)))
            {
                continue;
            }

            size += stat.Size;
        }

        return size;
    }
}
