using BlockDriver.Abstractions;
using BlockDriver.Interop;
using BlockDriver.Vhdx;

namespace BlockDriver.Core;

/// <summary>The <see cref="ILayerStore"/> on a directory: catalog.db (SQLite) plus one VHDX file per layer under
/// layers/ (see <see cref="StorePaths"/>).</summary>
/// <remarks>
/// <para>Every change follows one pattern: take the store lock (<see cref="StoreMutex"/>), check, journal the
/// operation in the catalog, do the file work (new files are built under a temporary name and renamed into place),
/// then, in one transaction, update the layer rows and delete the journal entry. A crash leaves a journal entry;
/// the next <see cref="OpenAsync"/> rolls the operation back, or forward once its rename happened
/// (LayerStore.Reconcile.cs).</para>
/// <para>The store is its owner's alone: directories 0700, writable layer files and the catalog 0600, sealed files
/// 0400 (read-only as a guard for people; the guarantee comes from the store
/// never opening them for writing), lock files 0600 opened without following links; modes are set whatever the
/// umask and repaired at every open.</para>
/// </remarks>
public sealed partial class LayerStore : ILayerStore
{
    // The store is its owner's alone (root's, for a daemon): nobody else may read a layer's bytes, hold its locks or
    // reach its mounts, whatever the umask.
    private const UnixFileMode SealedMode = UnixFileMode.UserRead;
    private const UnixFileMode WritableMode = SealedMode | UnixFileMode.UserWrite;
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private readonly LayerCatalog _catalog;
    private readonly ChainCache _chains = new();
    private IReadOnlyList<ReconcileAction> _reconciliation = [];

    private LayerStore(StorePaths paths, LayerCatalog catalog)
    {
        Paths = paths;
        _catalog = catalog;
    }

    /// <summary>Where the store's files are.</summary>
    public StorePaths Paths { get; }

    /// <inheritdoc/>
    public string Root => Paths.Root;

    /// <inheritdoc/>
    public IReadOnlyList<ReconcileAction> Reconciliation => _reconciliation;

    /// <summary>Opens the store at <paramref name="root"/>, reconciling the catalog with the files. With
    /// <paramref name="create"/>, a missing or empty directory becomes a new store.</summary>
    /// <exception cref="BlockDriverException">NotFound when there is no store and <paramref name="create"/> is false;
    /// InvalidArgument when the directory holds other things but no catalog; Corrupt when catalog.db is not ours.</exception>
    public static async Task<LayerStore> OpenAsync(string root, bool create = false, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(root);
        var paths = new StorePaths(root);
        bool exists = File.Exists(paths.Catalog);
        if (!exists)
        {
            if (File.Exists(paths.Root))
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument, $"{paths.Root} is a file, not a BlockDriver store.");
            }

            bool empty = !Directory.Exists(paths.Root) || !Directory.EnumerateFileSystemEntries(paths.Root).Any();
            if (!empty)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument,
                    $"{paths.Root} is not a BlockDriver store (it has no catalog.db) and is not empty.");
            }

            if (!create)
            {
                throw new BlockDriverException(ErrorKind.NotFound, $"no BlockDriver store at {paths.Root} (create a layer to make one).");
            }
        }

        // The catalog first: a catalog.db that is not ours is refused before anything in the directory changes.
        Directory.CreateDirectory(paths.Root, DirectoryMode);
        LayerCatalog catalog = LayerCatalog.Open(paths.Catalog, paths.Layers, create: !exists);
        try
        {
            // Modes are set, not left to the umask, and repaired at every open (a store made by an older version,
            // or touched by hand).
            foreach (string directory in (string[])[paths.Root, paths.Layers, paths.Run, paths.Locks, paths.Mounts])
            {
                Directory.CreateDirectory(directory, DirectoryMode);
                File.SetUnixFileMode(directory, DirectoryMode);
            }

            File.SetUnixFileMode(paths.Catalog, WritableMode);
        }
        catch
        {
            catalog.Dispose();
            throw;
        }

        var store = new LayerStore(paths, catalog);
        try
        {
            store._reconciliation = await store.ReconcileAsync(ct).ConfigureAwait(false);
            store.RepairLayerFileModes();
            return store;
        }
        catch
        {
            catalog.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public IReadOnlyList<Layer> List()
    {
        // Creation order, except that a parent always comes before its children: a snapshot is created after the
        // layer that becomes its child, and a revert can move a layer onto a newer parent.
        List<Layer> layers = _catalog.List();
        var byId = layers.ToDictionary(l => l.Id, StringComparer.Ordinal);
        var ordered = new List<Layer>(layers.Count);
        var placed = new HashSet<string>(StringComparer.Ordinal);
        foreach (Layer layer in layers)
        {
            Place(layer);
        }

        return ordered;

        void Place(Layer layer)
        {
            var pending = new Stack<Layer>();
            for (Layer? current = layer; current is not null && !placed.Contains(current.Id);
                 current = current.Parent is string p ? byId.GetValueOrDefault(p) : null)
            {
                pending.Push(current);
            }

            while (pending.TryPop(out Layer? next))
            {
                if (placed.Add(next.Id))
                {
                    ordered.Add(next);
                }
            }
        }
    }

    /// <inheritdoc/>
    public Layer Get(string id) =>
        Find(id) ?? throw new BlockDriverException(ErrorKind.NotFound, $"no layer {id} in {Root}.");

    /// <inheritdoc/>
    public Layer? Find(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        return _catalog.Find(id);
    }

    /// <inheritdoc/>
    public IReadOnlyList<string> Children(string id) => _catalog.Children(id);

    /// <inheritdoc/>
    public async Task<LayerDevice> OpenLayerAsync(string id, bool writable, CancellationToken ct = default)
    {
        Layer layer = Get(id);
        if (writable && layer.IsSealed)
        {
            throw new BlockDriverException(ErrorKind.ReadOnly, $"layer {id} is sealed; writing to a sealed layer is refused (clone it for a writable child).");
        }

        List<Layer> chain = Chain(layer);
        var leases = new List<IDisposable>();
        try
        {
            // Readers of every ancestor, so none is removed, merged or flattened under us; then the layer itself.
            for (int i = chain.Count - 1; i >= 1; i--)
            {
                leases.Add(LayerLeases.Acquire(Paths, chain[i].Id, exclusive: false));
            }

            leases.Add(LayerLeases.Acquire(Paths, layer.Id, exclusive: writable));
            VhdxDisk disk = await Task.Run(() => OpenChain(chain, readOnly: !writable, leases), ct).ConfigureAwait(false);
            return new LayerDevice(layer, disk, leases);
        }
        catch
        {
            foreach (IDisposable lease in leases)
            {
                lease.Dispose();
            }

            throw;
        }
    }

    /// <inheritdoc/>
    public LayerUsage GetUsage(string id)
    {
        Layer layer = Get(id);
        List<Layer> all = _catalog.List();
        return UsageCalculator.Compute(all, LayerSize).Layers.Single(u => u.Id == layer.Id);
    }

    /// <inheritdoc/>
    public StoreUsage GetStoreUsage() => UsageCalculator.Compute(_catalog.List(), LayerSize, Paths.Root);

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        _catalog.Dispose();
        return ValueTask.CompletedTask;
    }

    // Layer files are their owner's alone: 0400 sealed, 0600 writable (files an older version made 0644/0444 too).
    private void RepairLayerFileModes()
    {
        foreach (Layer layer in _catalog.List())
        {
            UnixFileMode mode = layer.IsSealed ? SealedMode : WritableMode;
            if (File.Exists(layer.Path) && File.GetUnixFileMode(layer.Path) != mode)
            {
                File.SetUnixFileMode(layer.Path, mode);
            }
        }
    }

    private static long LayerSize(Layer layer) => File.Exists(layer.Path) ? SparseFile.AllocatedBytes(layer.Path) : 0;

    // The layer and its ancestors, the layer first. The catalog's foreign key keeps parents present; a loop cannot be
    // recorded (a parent exists before its child), but a bound keeps a damaged catalog from hanging us.
    private List<Layer> Chain(Layer layer)
    {
        var chain = new List<Layer> { layer };
        while (chain[^1].Parent is string parent)
        {
            if (chain.Count > 4096)
            {
                throw new BlockDriverException(ErrorKind.Corrupt, $"layer {layer.Id}: the catalog's parent chain does not end.");
            }

            chain.Add(Get(parent));
        }

        return chain;
    }

    /// <summary>Number of shared parent chains open in this store instance (each with its merged read index).</summary>
    public int OpenChainCount => _chains.Count;

    // Opens the layer's file over the shared chain of its parent (opened once for every layer on it, with its merged
    // read index) and checks that the files are the ones the catalog names, in the same order. The chain lease joins
    // the device's leases, released after the disk closes.
    private VhdxDisk OpenChain(List<Layer> chain, bool readOnly, List<IDisposable> leases)
    {
        var options = new VhdxOpenOptions { ReadOnly = readOnly, ParentRoot = Paths.Layers };
        VhdxDisk disk;
        if (chain.Count == 1)
        {
            disk = VhdxDisk.Open(chain[0].Path, options);
        }
        else
        {
            ChainCache.Lease parent = _chains.Acquire(chain[1].Id,
                () => VhdxChain.Open(chain[1].Path, new VhdxOpenOptions { ReadOnly = true, ParentRoot = Paths.Layers }));
            try
            {
                disk = VhdxDisk.Open(chain[0].Path, parent.Chain, options);
            }
            catch
            {
                parent.Dispose();
                throw;
            }

            // Released after the disk: LayerDevice disposes the disk first, then the leases in reverse order.
            leases.Insert(0, parent);
        }

        try
        {
            string[] files = [.. disk.Files.Select(f => Path.GetFullPath(f.Path))];
            string[] expected = [.. chain.Select(l => l.Path)];
            if (!files.SequenceEqual(expected, StringComparer.Ordinal))
            {
                throw new BlockDriverException(ErrorKind.Corrupt,
                    $"layer {chain[0].Id}: its VHDX chain is {string.Join(" -> ", files.Select(Path.GetFileName))} but the catalog says {string.Join(" -> ", expected.Select(Path.GetFileName))}.");
            }

            return disk;
        }
        catch
        {
            disk.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }
}
