using BlockDriver.Interop;
namespace BlockDriver.Core;

/// <summary>Derives the figures of <see cref="LayerUsage"/>, <see cref="ContainerUsage"/> and
/// <see cref="StoreUsage"/> from the catalog's tree and each file's allocated bytes.</summary>
/// <remarks>A layer is read by every writable layer at or below it. Its bytes are shared when two or more such
/// containers exist, exclusive to the one container when one does, unused when none does. Every layer's bytes land
/// in exactly one of those three, so shared + exclusive + unused = the layer files' total.</remarks>
internal static class UsageCalculator
{
    public static StoreUsage Compute(IReadOnlyList<Layer> layers, Func<Layer, long> sizeOf, string? root = null)
    {
        Dictionary<string, Layer> byId = layers.ToDictionary(l => l.Id, StringComparer.Ordinal);
        Dictionary<string, long> size = layers.ToDictionary(l => l.Id, sizeOf, StringComparer.Ordinal);
        var children = layers.ToDictionary(l => l.Id, _ => 0, StringComparer.Ordinal);
        var readers = layers.ToDictionary(l => l.Id, _ => new List<string>(), StringComparer.Ordinal);
        foreach (Layer layer in layers)
        {
            if (layer.Parent is string parent && children.TryGetValue(parent, out int count))
            {
                children[parent] = count + 1;
            }

            if (layer.State == LayerState.Writable)
            {
                foreach (Layer ancestor in Ancestry(layer, byId))
                {
                    readers[ancestor.Id].Add(layer.Id);
                }
            }
        }

        var layerUsage = new List<LayerUsage>(layers.Count);
        foreach (Layer layer in layers)
        {
            long virtualSize = Ancestry(layer, byId).Sum(a => size[a.Id]);
            layerUsage.Add(new LayerUsage(layer.Id, size[layer.Id], virtualSize, layer.Capacity, children[layer.Id], readers[layer.Id].Count));
        }

        var containers = new List<ContainerUsage>();
        foreach (Layer layer in layers.Where(l => l.State == LayerState.Writable))
        {
            long exclusive = 0;
            long shared = 0;
            foreach (Layer ancestor in Ancestry(layer, byId))
            {
                if (readers[ancestor.Id].Count == 1)
                {
                    exclusive += size[ancestor.Id];
                }
                else
                {
                    shared += size[ancestor.Id];
                }
            }

            containers.Add(new ContainerUsage(layer.Id, size[layer.Id], exclusive, shared));
        }

        long layerBytes = size.Values.Sum();
        long sharedBytes = layers.Where(l => readers[l.Id].Count >= 2).Sum(l => size[l.Id]);
        long unused = layers.Where(l => readers[l.Id].Count == 0).Sum(l => size[l.Id]);
        long allocated = root is null ? layerBytes : DirectoryAllocation(root);
        long promised = layers.Where(l => l.State == LayerState.Writable).Sum(l => l.Capacity);
        double overcommit = promised == 0 || allocated == 0 ? 0 : (double)promised / allocated;
        return new StoreUsage(allocated, layerBytes, sharedBytes, containers.Sum(c => c.Exclusive), unused, overcommit, layerUsage, containers);
    }

    /// <summary>Allocated bytes of <paramref name="root"/> and everything under it on the same file system
    /// (directories included, symbolic links not followed, mount points not entered), as
    /// <c>du -sx --block-size=1</c> counts them. The store's own mounts (the FUSE file system of layer devices under
    /// run/, layers mounted under mnt/) would otherwise count every mounted layer's virtual size and contents.</summary>
    public static long DirectoryAllocation(string root)
    {
        ulong device = SparseFile.DeviceOf(root);
        long total = SparseFile.AllocatedBytes(root);
        var options = new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true };
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.TryPop(out string? directory))
        {
            foreach (FileSystemInfo entry in new DirectoryInfo(directory).EnumerateFileSystemInfos("*", options))
            {
                try
                {
                    bool isDirectory = entry is DirectoryInfo;
                    if (isDirectory && SparseFile.DeviceOf(entry.FullName) != device)
                    {
                        continue;
                    }

                    total += SparseFile.AllocatedBytes(entry.FullName);
                    if (isDirectory)
                    {
                        pending.Push(entry.FullName);
                    }
                }
                catch (IOException) when (!Path.Exists(entry.FullName))
                {
                    // Deleted between listing and stat (another process removed a layer): it occupies nothing now.
                }
            }
        }

        return total;
    }

    private static IEnumerable<Layer> Ancestry(Layer layer, Dictionary<string, Layer> byId)
    {
        for (Layer? current = layer; current is not null; current = current.Parent is string p ? byId.GetValueOrDefault(p) : null)
        {
            yield return current;
        }
    }
}
