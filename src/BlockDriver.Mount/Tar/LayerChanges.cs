using System.Text;

namespace BlockDriver.Mount.Tar;

/// <summary>Compares two mounted trees, a layer and its parent, as Docker's naive differ does: a path only in the
/// layer is added, only in the parent deleted (its subtree is not listed), in both but with a different type, size,
/// owner, mode, modification time, device number, link target or extended attributes modified (a directory whose
/// entries changed has a new modification time, so it shows as modified too). Symbolic links are never followed.</summary>
public static class LayerChanges
{
    /// <summary>The changes from <paramref name="parentRoot"/> (null: an empty tree) to <paramref name="layerRoot"/>,
    /// parents before children, names in ordinal order.</summary>
    public static IReadOnlyList<LayerChange> Compute(string? parentRoot, string layerRoot)
    {
        var changes = new List<LayerChange>();
        using DirectoryHandle layer = DirectoryHandle.OpenRoot(layerRoot);
        using DirectoryHandle? parent = parentRoot is null ? null : DirectoryHandle.OpenRoot(parentRoot);
        Walk(parent, layer, "", changes);
        return changes;
    }

    /// <summary>Bytes of regular-file content added or modified: Docker's DiffSize.</summary>
    public static long Size(string layerRoot, IEnumerable<LayerChange> changes)
    {
        long size = 0;
        foreach (LayerChange change in changes.Where(c => c.Kind != ChangeKind.Deleted))
        {
            if (FileStat.OfPath(layerRoot + change.Path) is { IsRegular: true } stat)
            {
                size += stat.Size;
            }
        }

        return size;
    }

    private static void Walk(DirectoryHandle? parent, DirectoryHandle layer, string path, List<LayerChange> changes)
    {
        var layerNames = new SortedSet<string>(layer.Names(), StringComparer.Ordinal);
        var parentNames = parent is null ? [] : new HashSet<string>(parent.Names(), StringComparer.Ordinal);
        foreach (string name in parentNames.Where(n => !layerNames.Contains(n)).Order(StringComparer.Ordinal))
        {
            changes.Add(new LayerChange(ChangeKind.Deleted, $"{path}/{name}"));
        }

        foreach (string name in layerNames)
        {
            string childPath = $"{path}/{name}";
            FileStat mine = FileStat.Require(layer.Fd, name);
            FileStat? theirs = parentNames.Contains(name) ? FileStat.At(parent!.Fd, name) : null;
            if (theirs is null)
            {
                changes.Add(new LayerChange(ChangeKind.Added, childPath));
            }
            else if (!Same(parent!, layer, name, theirs.Value, mine))
            {
                changes.Add(new LayerChange(ChangeKind.Modified, childPath));
            }

            if (mine.IsDirectory)
            {
                using DirectoryHandle? layerChild = layer.OpenChild(name);
                using DirectoryHandle? parentChild = theirs is { IsDirectory: true } ? parent!.OpenChild(name) : null;
                if (layerChild is not null)
                {
                    Walk(parentChild, layerChild, childPath, changes);
                }
            }
        }
    }

    private static bool Same(DirectoryHandle parent, DirectoryHandle layer, string name, FileStat a, FileStat b)
    {
        if (a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.RdevMajor != b.RdevMajor || a.RdevMinor != b.RdevMinor)
        {
            return false;
        }

        // A directory's modification time changes when entries come and go in it, which docker diff shows as a
        // changed directory ("C /var" above "D /var/cache"); its size is file-system bookkeeping, not content.
        if (a.MtimeSeconds != b.MtimeSeconds || a.MtimeNanoseconds != b.MtimeNanoseconds || (!a.IsDirectory && a.Size != b.Size))
        {
            return false;
        }

        if (a.IsSymlink && TarFs.ReadLink(parent, name) != TarFs.ReadLink(layer, name))
        {
            return false;
        }

        return TarFs.ExtendedAttributes(parent, name).OrderBy(x => x.Key, StringComparer.Ordinal)
            .SequenceEqual(TarFs.ExtendedAttributes(layer, name).OrderBy(x => x.Key, StringComparer.Ordinal), XattrComparer.Instance);
    }

    private sealed class XattrComparer : IEqualityComparer<KeyValuePair<string, byte[]>>
    {
        public static readonly XattrComparer Instance = new();

        public bool Equals(KeyValuePair<string, byte[]> x, KeyValuePair<string, byte[]> y) =>
            x.Key == y.Key && x.Value.AsSpan().SequenceEqual(y.Value);

        public int GetHashCode(KeyValuePair<string, byte[]> obj) => HashCode.Combine(obj.Key, Encoding.Latin1.GetString(obj.Value));
    }
}
