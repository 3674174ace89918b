using BlockDriver.Abstractions;

namespace BlockDriver.Mount.Tar;

/// <summary>One step of <see cref="LayerWalk"/>: a change, the open directory of the layer holding its entry (valid
/// until the walk moves on), the entry's name there and (not for a deletion) its stat.</summary>
internal readonly record struct WalkItem(LayerChange Change, DirectoryHandle Directory, byte[] Name, FileStat? Stat);

/// <summary>The differences between a layer's tree and its parent's, found by an iterative depth-first walk that
/// holds one open directory per level per tree (never a path resolved again, never a symbolic link followed, no
/// recursion: a tree of any depth cannot exhaust the stack). Deeper than <see cref="TarPaths.MaxDepth"/> levels, or
/// at a path longer than <see cref="TarPaths.MaxPathLength"/> bytes, it stops with InvalidArgument. Order: in each directory the deleted names, then the layer's names, each followed by
/// its subtree; names in byte order.</summary>
internal static class LayerWalk
{
    /// <summary>The changes from <paramref name="parent"/> (null: an empty tree) to <paramref name="layer"/>.
    /// Enumerate once; the handles given in the items belong to the walk.</summary>
    /// <exception cref="BlockDriverException">InvalidArgument past <see cref="TarPaths.MaxDepth"/> levels.</exception>
    public static IEnumerable<WalkItem> Changes(DirectoryHandle? parent, DirectoryHandle layer)
    {
        var stack = new Stack<Frame>();
        try
        {
            Frame root = Frame.Open(null, null, parent, layer, []);
            stack.Push(root);
            foreach (byte[] deleted in root.Deleted)
            {
                yield return new WalkItem(new LayerChange(ChangeKind.Deleted, ByteNames.Join("/"u8, deleted)), root.Layer, deleted, null);
            }

            while (stack.Count > 0)
            {
                Frame frame = stack.Peek();
                if (frame.Index == frame.Names.Count)
                {
                    stack.Pop().Dispose();
                    continue;
                }

                byte[] name = frame.Names[frame.Index++];
                if (FileStat.At(frame.Layer.Fd, name) is not { } mine)
                {
                    continue; // gone since the listing (a running container's tree)
                }

                if (frame.RawPath.Length + 1 + name.Length > TarPaths.MaxPathLength)
                {
                    throw new BlockDriverException(ErrorKind.InvalidArgument,
                        $"the layer's tree has a path longer than {TarPaths.MaxPathLength} bytes (PATH_MAX), at \"{ByteNames.Display(frame.RawPath.AsSpan(0, Math.Min(frame.RawPath.Length, 128)))}...\".");
                }

                byte[] path = [.. frame.RawPath, (byte)'/', .. name];
                FileStat? theirs = frame.Parent is not null && frame.ParentNames.Contains(name) ? FileStat.At(frame.Parent.Fd, name) : null;
                if (theirs is null)
                {
                    yield return new WalkItem(new LayerChange(ChangeKind.Added, path), frame.Layer, name, mine);
                }
                else if (!Same(frame.Parent!, frame.Layer, name, theirs.Value, mine))
                {
                    yield return new WalkItem(new LayerChange(ChangeKind.Modified, path), frame.Layer, name, mine);
                }

                if (!mine.IsDirectory)
                {
                    continue;
                }

                if (stack.Count >= TarPaths.MaxDepth)
                {
                    throw new BlockDriverException(ErrorKind.InvalidArgument,
                        $"the layer's tree is more than {TarPaths.MaxDepth} directory levels deep (at \"{ByteNames.Display(path.AsSpan(0, Math.Min(path.Length, 128)))}...\").");
                }

                DirectoryHandle? layerChild = frame.Layer.OpenChild(name);
                if (layerChild is null)
                {
                    continue;
                }

                DirectoryHandle? parentChild = theirs is { IsDirectory: true } ? frame.Parent!.OpenChild(name) : null;
                Frame child = Frame.Open(layerChild, parentChild, parentChild, layerChild, path);
                stack.Push(child);
                foreach (byte[] deleted in child.Deleted)
                {
                    yield return new WalkItem(new LayerChange(ChangeKind.Deleted, [.. path, (byte)'/', .. deleted]), child.Layer, deleted, null);
                }
            }
        }
        finally
        {
            while (stack.Count > 0)
            {
                stack.Pop().Dispose();
            }
        }
    }

    /// <summary>Every entry below <paramref name="layer"/> with its root-relative raw path ("/a/b") and stat,
    /// walked the same way (bounded depth, no links followed).</summary>
    public static IEnumerable<(byte[] Path, FileStat Stat)> Entries(DirectoryHandle layer)
    {
        foreach (WalkItem item in Changes(null, layer))
        {
            yield return (item.Change.RawPath, item.Stat!.Value);
        }
    }

    /// <summary>Whether two entries are the same for a diff: type, mode, owner, device, time, size (not of a
    /// directory), link target and xattrs.</summary>
    private static bool Same(DirectoryHandle parent, DirectoryHandle layer, byte[] name, FileStat a, FileStat b)
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

        if (a.IsSymlink && !TarFs.ReadLink(parent, name).AsSpan().SequenceEqual(TarFs.ReadLink(layer, name)))
        {
            return false;
        }

        SortedDictionary<byte[], byte[]> x = TarFs.ExtendedAttributes(parent, name);
        SortedDictionary<byte[], byte[]> y = TarFs.ExtendedAttributes(layer, name);
        return x.Count == y.Count && x.Zip(y).All(p => p.First.Key.AsSpan().SequenceEqual(p.Second.Key) && p.First.Value.AsSpan().SequenceEqual(p.Second.Value));
    }

    // A directory being walked: its open handles (owned unless they are the roots), its names and where the walk is.
    private sealed class Frame : IDisposable
    {
        private readonly DirectoryHandle? _ownedLayer;
        private readonly DirectoryHandle? _ownedParent;

        private Frame(DirectoryHandle? ownedLayer, DirectoryHandle? ownedParent, DirectoryHandle? parent, DirectoryHandle layer, byte[] rawPath,
            List<byte[]> names, HashSet<byte[]> parentNames, List<byte[]> deleted)
        {
            _ownedLayer = ownedLayer;
            _ownedParent = ownedParent;
            Parent = parent;
            Layer = layer;
            RawPath = rawPath;
            Names = names;
            ParentNames = parentNames;
            Deleted = deleted;
        }

        public DirectoryHandle? Parent { get; }

        public DirectoryHandle Layer { get; }

        public byte[] RawPath { get; }

        public List<byte[]> Names { get; }

        public HashSet<byte[]> ParentNames { get; }

        public List<byte[]> Deleted { get; }

        public int Index { get; set; }

        public static Frame Open(DirectoryHandle? ownedLayer, DirectoryHandle? ownedParent, DirectoryHandle? parent, DirectoryHandle layer, byte[] rawPath)
        {
            List<byte[]> names = layer.Names();
            names.Sort(ByteNames.Comparer);
            var layerNames = new HashSet<byte[]>(names, ByteNames.Comparer);
            var parentNames = parent is null ? new HashSet<byte[]>(ByteNames.Comparer) : new HashSet<byte[]>(parent.Names(), ByteNames.Comparer);
            List<byte[]> deleted = [.. parentNames.Where(n => !layerNames.Contains(n))];
            deleted.Sort(ByteNames.Comparer);
            return new Frame(ownedLayer, ownedParent, parent, layer, rawPath, names, parentNames, deleted);
        }

        public void Dispose()
        {
            _ownedLayer?.Dispose();
            _ownedParent?.Dispose();
        }
    }
}
