using BlockDriver.Abstractions;
using BlockDriver.Core.Images;
using BlockDriver.Vhdx;
using Microsoft.Data.Sqlite;

namespace BlockDriver.Core;

// The operations that change layers. Each one: store lock, checks, journal entry, file work (crash points name the
// moments the crash tests kill the process), one final transaction. Reconcile.cs knows how to finish or undo each.
public sealed partial class LayerStore
{
    /// <inheritdoc/>
    public async Task<Layer> CreateAsync(LayerSpec spec, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        using IDisposable mutex = await StoreMutex.AcquireAsync(Paths, ct).ConfigureAwait(false);
        Layer layer = PlanNewLayer(spec);
        long operation = _catalog.InTransaction(t => t.BeginOperation("create", layer.Id, null));
        try
        {
            await CreateFileAsync(layer.Path, layer, ct).ConfigureAwait(false);
            CrashPoints.Hit("create.file");
            _catalog.InTransaction(t =>
            {
                t.Insert(layer);
                t.EndOperation(operation);
            });
            return layer;
        }
        catch (Exception e)
        {
            RollBack(operation, $"creating layer {layer.Id}", e, () => UndoFile(layer.Path));
            throw;
        }
    }

    /// <inheritdoc/>
    public async Task<Layer> ImportAsync(string file, LayerSpec spec, IProgress<long>? progress = null, string? parentDirectory = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(spec);
        ImageFiles.RequireFile(file);
        using IDisposable mutex = await StoreMutex.AcquireAsync(Paths, ct).ConfigureAwait(false);
        string parentRoot = Path.GetFullPath(parentDirectory ?? Path.GetDirectoryName(Path.GetFullPath(file))!);
        await using IBlockDevice source = ImageFiles.Open(file, readOnly: true, parentRoot);
        if (spec.Parent is null)
        {
            spec = spec with { Capacity = spec.Capacity ?? source.Length, Kind = spec.Kind ?? LayerKind.Image };
        }

        Layer layer = PlanNewLayer(spec);
        if (source.Length != layer.Capacity)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"{file} is {source.Length} bytes but the layer would be {layer.Capacity}; an import over a parent must be the parent's size.");
        }

        string temp = Paths.TempFile(layer.Id, "import");
        long operation = _catalog.InTransaction(t => t.BeginOperation("import", layer.Id, null));
        try
        {
            await CreateFileAsync(temp, layer, ct).ConfigureAwait(false);
            await using (VhdxDisk target = VhdxDisk.Open(temp, new VhdxOpenOptions { ParentRoot = Paths.Layers }))
            {
                DataMap candidates = await DifferenceCandidates.LoadAsync(source, target, ct).ConfigureAwait(false);
                await DifferenceWriter.WriteAsync(source, target, candidates, progress, ct).ConfigureAwait(false);
                await target.FlushAsync(ct).ConfigureAwait(false);
            }

            CrashPoints.Hit("import.copied");
            File.Move(temp, layer.Path);
            CrashPoints.Hit("import.renamed");
            _catalog.InTransaction(t =>
            {
                t.Insert(layer);
                t.EndOperation(operation);
            });
            return layer;
        }
        catch (Exception e)
        {
            RollBack(operation, $"importing layer {layer.Id}", e, () =>
            {
                UndoFile(temp);
                if (Find(layer.Id) is null)
                {
                    UndoFile(layer.Path);
                }
            });
            throw;
        }
    }

    /// <inheritdoc/>
    public async Task<Layer> SealAsync(string id, string? newId = null, CancellationToken ct = default)
    {
        using IDisposable mutex = await StoreMutex.AcquireAsync(Paths, ct).ConfigureAwait(false);
        Layer layer = Get(id);
        if (layer.IsSealed)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer {id} is already sealed.");
        }

        if (newId is not null && newId != id)
        {
            LayerIds.Validate(newId);
            RequireFreeId(newId);
        }
        else
        {
            newId = null;
        }

        using IDisposable lease = LayerLeases.Acquire(Paths, id, exclusive: true);
        await CleanCloseAsync(layer.Path, ct).ConfigureAwait(false);
        long operation = _catalog.InTransaction(t => t.BeginOperation("seal", id, newId));
        string path = newId is null ? layer.Path : Paths.LayerFile(newId);
        try
        {
            if (newId is not null)
            {
                File.Move(layer.Path, path);
            }

            CrashPoints.Hit("seal.renamed");
            File.SetUnixFileMode(path, SealedMode);
            LayerKind kind = layer.Kind == LayerKind.Snapshot ? LayerKind.Snapshot : LayerKind.Image;
            _catalog.InTransaction(t =>
            {
                if (newId is not null)
                {
                    t.Rename(id, newId);
                }

                t.SetState(newId ?? id, LayerState.Sealed, kind);
                t.EndOperation(operation);
            });
        }
        catch (Exception e)
        {
            // Until the last transaction the catalog still has the layer writable under its old id: put the file back.
            RollBack(operation, $"sealing layer {id}", e, () =>
            {
                if (newId is not null && File.Exists(path) && !File.Exists(layer.Path))
                {
                    File.Move(path, layer.Path);
                }

                MakeWritable(layer.Path);
            });
            throw;
        }

        return Get(newId ?? id);
    }

    /// <inheritdoc/>
    public async Task RemoveAsync(string id, CancellationToken ct = default)
    {
        using IDisposable mutex = await StoreMutex.AcquireAsync(Paths, ct).ConfigureAwait(false);
        Layer layer = Get(id);
        RequireNoChildren(layer, "removed");
        using IDisposable lease = LayerLeases.Acquire(Paths, id, exclusive: true);
        long operation = _catalog.InTransaction(t =>
        {
            t.Delete(id);
            return t.BeginOperation("remove", id, null);
        });
        CrashPoints.Hit("remove.unlisted");
        File.Delete(layer.Path);
        _catalog.InTransaction(t => t.EndOperation(operation));
    }

    /// <inheritdoc/>
    public async Task<Layer> SnapshotAsync(string id, string? snapshotId = null, CancellationToken ct = default)
    {
        using IDisposable mutex = await StoreMutex.AcquireAsync(Paths, ct).ConfigureAwait(false);
        Layer layer = RequireWritable(id, "snapshotted");
        snapshotId ??= LayerIds.Generate();
        LayerIds.Validate(snapshotId);
        RequireFreeId(snapshotId);
        using IDisposable lease = LayerLeases.Acquire(Paths, id, exclusive: true);
        await CleanCloseAsync(layer.Path, ct).ConfigureAwait(false);

        var snapshot = new Layer(snapshotId, layer.Parent, LayerKind.Snapshot, LayerState.Sealed, DateTimeOffset.UtcNow,
            layer.Capacity, new Dictionary<string, string>(), Paths.LayerFile(snapshotId));
        long operation = _catalog.InTransaction(t => t.BeginOperation("snapshot", id, snapshotId));
        try
        {
            // The writable layer's file becomes the snapshot (a rename: no data moves) and a new, empty child of it
            // takes the writable layer's name.
            File.Move(layer.Path, snapshot.Path);
            CrashPoints.Hit("snapshot.renamed");
            File.SetUnixFileMode(snapshot.Path, SealedMode);
            await VhdxFile.CreateDifferencingAsync(layer.Path, snapshot.Path, ct: ct).ConfigureAwait(false);
            CrashPoints.Hit("snapshot.child");
            _catalog.InTransaction(t =>
            {
                t.Insert(snapshot);
                t.SetParent(id, snapshotId);
                t.EndOperation(operation);
            });
        }
        catch (Exception e)
        {
            // As reconciliation does: the new child (whole or partial) goes, the snapshot's file is the layer again.
            RollBack(operation, $"snapshot of layer {id}", e, () =>
            {
                if (File.Exists(snapshot.Path))
                {
                    UndoFile(layer.Path);
                    File.Move(snapshot.Path, layer.Path);
                }

                MakeWritable(layer.Path);
            });
            throw;
        }

        return Get(snapshotId);
    }

    /// <inheritdoc/>
    public async Task<Layer> RevertAsync(string id, string snapshotId, CancellationToken ct = default)
    {
        using IDisposable mutex = await StoreMutex.AcquireAsync(Paths, ct).ConfigureAwait(false);
        Layer layer = RequireWritable(id, "reverted");
        Layer snapshot = Get(snapshotId);
        if (!snapshot.IsSealed)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer {snapshotId} is writable; a layer can only be reverted to a sealed one.");
        }

        if (snapshot.Capacity != layer.Capacity)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"layer {snapshotId} is a {snapshot.Capacity}-byte disk and {id} a {layer.Capacity}-byte one; revert needs the same size.");
        }

        using IDisposable lease = LayerLeases.Acquire(Paths, id, exclusive: true);
        string temp = Paths.TempFile(id, "revert");
        long operation = _catalog.InTransaction(t => t.BeginOperation("revert", id, snapshotId));
        try
        {
            await VhdxFile.CreateDifferencingAsync(temp, snapshot.Path, ct: ct).ConfigureAwait(false);
            CrashPoints.Hit("revert.child");
        }
        catch (Exception e)
        {
            RollBack(operation, $"reverting layer {id} to {snapshotId}", e, () => UndoFile(temp));
            throw;
        }

        try
        {
            File.Move(temp, layer.Path, overwrite: true);
        }
        catch (Exception e)
        {
            RollBack(operation, $"reverting layer {id} to {snapshotId}", e, () => UndoFile(temp));
            throw;
        }

        CrashPoints.Hit("revert.renamed");
        FinishCommitted(operation, $"reverting layer {id} to {snapshotId}", t => t.SetParent(id, snapshotId), afterRename: null);
        return Get(id);
    }

    /// <inheritdoc/>
    public Task<Layer> CloneAsync(string id, string? newId = null, CancellationToken ct = default) =>
        CreateAsync(new LayerSpec { Parent = id, Id = newId, Kind = LayerKind.Container }, ct);

    /// <inheritdoc/>
    public async Task<Layer> MergeAsync(string id, CancellationToken ct = default)
    {
        using IDisposable mutex = await StoreMutex.AcquireAsync(Paths, ct).ConfigureAwait(false);
        Layer layer = Get(id);
        Layer parent = Get(layer.Parent ?? throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer {id} is a base layer; it has no parent to merge."));
        IReadOnlyList<string> siblings = [.. Children(parent.Id).Where(c => c != id)];
        if (siblings.Count > 0)
        {
            throw new BlockDriverException(ErrorKind.InUse,
                $"layer {parent.Id} has other children ({string.Join(", ", siblings)}); it can only be merged into its one child.");
        }

        using IDisposable leaseLayer = LayerLeases.Acquire(Paths, id, exclusive: true);
        using IDisposable leaseParent = LayerLeases.Acquire(Paths, parent.Id, exclusive: true);
        // The merged file is built beside, over the grandparent, with the sectors the layer and its parent hold;
        // the originals stay untouched until the rename, so a crash before it loses nothing.
        Layer? grandparent = parent.Parent is string g ? Get(g) : null;
        await ReplaceFileAsync(layer, "merge", parent.Id, grandparent, levels: 2, t =>
        {
            t.SetParent(id, parent.Parent);
            t.Delete(parent.Id);
        }, afterRename: () => File.Delete(parent.Path), ct).ConfigureAwait(false);
        return Get(id);
    }

    /// <inheritdoc/>
    public async Task<Layer> FlattenAsync(string id, CancellationToken ct = default)
    {
        using IDisposable mutex = await StoreMutex.AcquireAsync(Paths, ct).ConfigureAwait(false);
        Layer layer = Get(id);
        if (layer.Parent is null)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer {id} is already a base layer.");
        }

        using IDisposable lease = LayerLeases.Acquire(Paths, id, exclusive: true);
        await ReplaceFileAsync(layer, "flatten", null, newParent: null, levels: int.MaxValue, t => t.SetParent(id, null), afterRename: null, ct)
            .ConfigureAwait(false);
        return Get(id);
    }

    // Merge and flatten: journal the operation, build at a temporary name a file that reads exactly like the layer
    // (RewriteAsync), rename it over the layer's file (the commit point: crash points OP.built before it and
    // OP.renamed after it), then finish the catalog in one transaction with the journal entry's removal.
    private async Task ReplaceFileAsync(Layer layer, string operationName, string? argument, Layer? newParent, int levels,
        Action<CatalogTransaction> commit, Action? afterRename, CancellationToken ct)
    {
        string temp = Paths.TempFile(layer.Id, operationName);
        long operation = _catalog.InTransaction(t => t.BeginOperation(operationName, layer.Id, argument));
        string what = $"{operationName} of layer {layer.Id}";
        try
        {
            await RewriteAsync(layer, newParent, levels, temp, ct).ConfigureAwait(false);
            CrashPoints.Hit(operationName + ".built");
            File.SetUnixFileMode(temp, layer.IsSealed ? SealedMode : WritableMode);
            File.Move(temp, layer.Path, overwrite: true);
        }
        catch (Exception e)
        {
            RollBack(operation, what, e, () => UndoFile(temp));
            throw;
        }

        CrashPoints.Hit(operationName + ".renamed");
        FinishCommitted(operation, what, commit, afterRename);
    }

    // The steps after an operation's commit point (the rename that put its new file in place): what the rename
    // committed cannot be undone, so when a step fails (the catalog's disk is full) the operation is finished as the
    // next open's reconciliation would finish it (Recover), at once; only when that fails too does the journal entry
    // stay, and the error says so.
    private void FinishCommitted(long operation, string what, Action<CatalogTransaction> commit, Action? afterRename)
    {
        try
        {
            afterRename?.Invoke();
            _catalog.InTransaction(t =>
            {
                commit(t);
                t.EndOperation(operation);
            });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SqliteException)
        {
            try
            {
                PendingOperation pending = _catalog.PendingOperations().Single(p => p.Sequence == operation);
                _ = Recover(pending);
                _catalog.InTransaction(t => t.EndOperation(operation));
            }
            catch (Exception again) when (again is IOException or UnauthorizedAccessException or SqliteException or BlockDriverException)
            {
                throw UnfinishedError(what, e, again);
            }
        }
    }

    // A failed operation: `undo` puts its files back as they were before it began (each step checks what is there,
    // so it undoes as much as was done), then its journal entry goes, both at once, in the failing call. Returns when
    // that worked and the cause is not a full file system, for the caller to rethrow the cause; throws NoSpace (with
    // the store's free space) for a full one, or an error saying the journal keeps the entry when undoing failed too.
    private void RollBack(long operation, string what, Exception cause, Action undo)
    {
        try
        {
            undo();
            _catalog.InTransaction(t => t.EndOperation(operation));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SqliteException or BlockDriverException)
        {
            throw UnfinishedError(what, cause, e);
        }

        if (StoreSpace.IsNoSpace(cause))
        {
            throw new BlockDriverException(ErrorKind.NoSpace,
                $"{what} failed: no space left on the store's file system ({StoreSpace.Describe(Paths.Root)}); nothing was changed. Free space and try again.",
                cause);
        }
    }

    private BlockDriverException UnfinishedError(string what, Exception cause, Exception again) =>
        new(StoreSpace.IsNoSpace(cause) || StoreSpace.IsNoSpace(again) ? ErrorKind.NoSpace : ErrorKind.Unavailable,
            $"{what} failed ({cause.Message}) and putting the store back in order failed too ({again.Message}); "
            + $"the operation stays in the store's journal and the store's next open finishes or undoes it ({StoreSpace.Describe(Paths.Root)}).",
            new AggregateException(cause, again));

    /// <inheritdoc/>
    public async Task ExportAsync(string id, string path, ExportFormat format, IProgress<long>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        string destination = Path.GetFullPath(path);
        if (destination.StartsWith(Paths.Root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"{path} is inside the store; export somewhere else.");
        }

        if (Directory.Exists(destination))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"{path} is a directory.");
        }

        await using LayerDevice source = await OpenLayerAsync(id, writable: false, ct).ConfigureAwait(false);
        string temp = Path.Combine(Path.GetDirectoryName(destination)!, $".{Path.GetFileName(destination)}.{Guid.NewGuid():N}.tmp");
        try
        {
            IBlockDevice target;
            if (format == ExportFormat.Raw)
            {
                target = FileBlockDevice.Create(temp, source.Length);
            }
            else
            {
                VhdxFile.CreateDynamic(temp, source.Length, new VhdxCreateOptions { LogicalSectorSize = source.SectorSize });
                target = VhdxDisk.Open(temp);
            }

            await using (target.ConfigureAwait(false))
            {
                DataMap candidates = await DataMap.LoadAsync(source, ct).ConfigureAwait(false);
                await DifferenceWriter.WriteAsync(source, target, candidates, progress, ct).ConfigureAwait(false);
                await target.FlushAsync(ct).ConfigureAwait(false);
            }

            File.Move(temp, destination, overwrite: true);
        }
        catch
        {
            UndoFile(temp);
            throw;
        }
    }

    /// <inheritdoc/>
    public async Task<Layer> UpdateLabelsAsync(string id, IReadOnlyDictionary<string, string?> changes, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(changes);
        using IDisposable mutex = await StoreMutex.AcquireAsync(Paths, ct).ConfigureAwait(false);
        Layer layer = Get(id);
        _catalog.InTransaction(t =>
        {
            var labels = new Dictionary<string, string>(layer.Labels, StringComparer.Ordinal);
            foreach ((string key, string? value) in changes)
            {
                if (value is null)
                {
                    labels.Remove(key);
                }
                else
                {
                    labels[key] = value;
                }
            }

            t.ClearLabels(id);
            t.SetLabels(id, labels);
        });
        return Get(id);
    }

    // Checks a spec against the catalog and returns the layer it would create.
    private Layer PlanNewLayer(LayerSpec spec)
    {
        string id = spec.Id ?? LayerIds.Generate();
        LayerIds.Validate(id);
        RequireFreeId(id);
        long capacity;
        if (spec.Parent is string parentId)
        {
            Layer parent = Get(parentId);
            if (!parent.IsSealed)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument,
                    $"layer {parentId} is writable; only sealed layers can be parents (seal it first).");
            }

            if (spec.Capacity is long asked && asked != parent.Capacity)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument,
                    $"a child of {parentId} has its capacity, {parent.Capacity} bytes; {asked} was asked for.");
            }

            capacity = parent.Capacity;
        }
        else
        {
            capacity = spec.Capacity ?? LayerSpec.DefaultCapacity;
            if (capacity <= 0 || capacity % 512 != 0)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument, $"capacity {capacity} must be a positive multiple of 512 bytes.");
            }
        }

        foreach (string key in spec.Labels.Keys)
        {
            if (string.IsNullOrEmpty(key))
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument, "a label needs a non-empty key.");
            }
        }

        LayerKind kind = spec.Kind ?? (spec.Parent is null ? LayerKind.Image : LayerKind.Container);
        return new Layer(id, spec.Parent, kind, LayerState.Writable, DateTimeOffset.UtcNow, capacity,
            new Dictionary<string, string>(spec.Labels, StringComparer.Ordinal), Paths.LayerFile(id));
    }

    private async Task CreateFileAsync(string path, Layer layer, CancellationToken ct)
    {
        if (File.Exists(path))
        {
            throw new BlockDriverException(ErrorKind.AlreadyExists,
                $"{path} exists but the catalog has no layer {layer.Id}; run 'blockdriver store check' to quarantine it.");
        }

        if (layer.Parent is string parent)
        {
            await VhdxFile.CreateDifferencingAsync(path, Paths.LayerFile(parent), ct: ct).ConfigureAwait(false);
        }
        else
        {
            VhdxFile.CreateDynamic(path, layer.Capacity);
        }
    }

    // Builds at `temp` a file that reads exactly like `layer`: over `newParent` (null: a dynamic base), holding what
    // the top `levels` files of the layer's chain hold. It takes over the layer's DataWriteGuid, so the layer's
    // children still link to it once it replaces the layer's file.
    private async Task RewriteAsync(Layer layer, Layer? newParent, int levels, string temp, CancellationToken ct)
    {
        await using VhdxDisk source = VhdxDisk.Open(layer.Path, new VhdxOpenOptions { ReadOnly = true, ParentRoot = Paths.Layers });
        if (newParent is not null)
        {
            await VhdxFile.CreateDifferencingAsync(temp, newParent.Path, new VhdxCreateOptions { BlockSize = source.Top.BlockSize }, ct).ConfigureAwait(false);
        }
        else
        {
            VhdxFile.CreateDynamic(temp, source.Length, new VhdxCreateOptions
            {
                BlockSize = source.Top.BlockSize,
                LogicalSectorSize = source.Top.LogicalSectorSize,
                PhysicalSectorSize = source.Top.PhysicalSectorSize,
            });
        }

        await using VhdxDisk target = VhdxDisk.Open(temp, new VhdxOpenOptions { ParentRoot = Paths.Layers });
        var ranges = new List<(long Start, long End)>();
        await foreach (ChainExtent extent in source.MapChainAsync(0, source.Length, ct).ConfigureAwait(false))
        {
            if (extent.Layer >= 0 && extent.Layer < levels)
            {
                ranges.Add((extent.Offset, extent.Offset + extent.Length));
            }
        }

        await DifferenceWriter.WriteAsync(source, target, DataMap.FromRanges(ranges), null, ct).ConfigureAwait(false);
        await target.Top.AdoptDataWriteGuidAsync(source.Top.DataWriteGuid, ct).ConfigureAwait(false);
    }

    // Opens a file for writing and closes it: replays a log a crashed writer left, so the file is clean (LogGuid zero)
    // before it is sealed or renamed.
    private static async Task CleanCloseAsync(string path, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        await VhdxFile.Open(path, readOnly: false).DisposeAsync().ConfigureAwait(false);
    }

    private Layer RequireWritable(string id, string verb)
    {
        Layer layer = Get(id);
        if (layer.IsSealed)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer {id} is sealed; only a writable layer can be {verb}.");
        }

        return layer;
    }

    private void RequireNoChildren(Layer layer, string verb)
    {
        IReadOnlyList<string> children = Children(layer.Id);
        if (children.Count > 0)
        {
            throw new BlockDriverException(ErrorKind.InUse,
                $"layer {layer.Id} has {children.Count} child layer{(children.Count == 1 ? "" : "s")} ({string.Join(", ", children)}); it cannot be {verb}.");
        }
    }

    private void RequireFreeId(string id)
    {
        if (Find(id) is not null)
        {
            throw new BlockDriverException(ErrorKind.AlreadyExists, $"layer {id} already exists.");
        }
    }

    private static void UndoFile(string path)
    {
        if (File.Exists(path))
        {
            File.SetUnixFileMode(path, WritableMode);
            File.Delete(path);
        }
    }
}
