using System.Buffers.Binary;
using System.Text;
using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Interop;
using BlockDriver.Mount;
using Microsoft.Extensions.Logging;

namespace BlockDriver.Containerd;

/// <summary>
/// containerd's snapshotter semantics over a layer store: each snapshot is one layer (generated id; key or name,
/// kind, times and labels in the layer's labels, see <see cref="SnapshotLabels"/>), and each active snapshot or view is
/// attached as a loop device from Prepare/View until Commit/Remove, for containerd to mount itself.
/// </summary>
/// <remarks>
/// <para><b>Mapping.</b> Prepare(key, parent) creates a writable child layer of the parent's layer (of the store's
/// ext4 base file system layer when parent is ""), View the same attached read-only; Commit(name, key) detaches the
/// device (which flushes the layer), seals the layer and renames the snapshot, or, while the device is mounted, freezes
/// the mount and snapshots the layer under it (the committed snapshot is a new sealed layer, the mount goes on over a
/// retired child); Remove detaches and removes the layer. Key spaces are per snapshotter name (the requests'
/// <c>snapshotter</c> field).</para>
/// <para><b>Errors</b> (<see cref="BlockDriverException"/>, translated by <see cref="StatusMapping"/>): NotFound
/// (unknown key, name or parent), AlreadyExists (key or name taken), InvalidArgument (empty key, parent not
/// committed, an immutable field in an update mask, a bad filter, a label over 4096 bytes), InUse (children; the
/// device still mounted at Remove, or at Commit where this process cannot see the mount) and ReadOnly (committing a view, Mounts of a committed snapshot), both
/// FailedPrecondition for containerd.</para>
/// <para>Thread-safe: operations are serialised.</para>
/// </remarks>
public sealed class BlockSnapshotter : IDisposable
{
    /// <summary>The largest label key plus value containerd allows, in bytes.</summary>
    public const int MaxLabelBytes = 4096;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly LayerStore _store;
    private readonly LayerMounter _mounter;
    private readonly long _capacity;
    private readonly ILogger _logger;

    /// <summary>A snapshotter over <paramref name="store"/> that attaches devices with <paramref name="mounter"/>.</summary>
    /// <param name="store">The store.</param>
    /// <param name="mounter">The store's mounter.</param>
    /// <param name="capacity">The virtual size in bytes of the base file system layer parentless snapshots are made
    /// over, and so of every snapshot.</param>
    /// <param name="logger">Where recovery and cleanup are logged.</param>
    public BlockSnapshotter(LayerStore store, LayerMounter mounter, long capacity, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(mounter);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _store = store;
        _mounter = mounter;
        _capacity = capacity;
        _logger = logger ?? throw new ArgumentNullException(nameof(logger));
    }

    /// <summary>Finishes what an interrupted Commit or Remove left (see <see cref="CleanupAsync"/>) for every
    /// snapshotter name, then attaches every active snapshot and view again (a daemon restart detached them; the
    /// loop device numbers may differ, and Mounts returns the current ones).</summary>
    public async Task StartAsync(CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await _mounter.StartAsync(ct).ConfigureAwait(false);
            await CleanupCoreAsync(null, ct).ConfigureAwait(false);
            foreach (Layer layer in _store.List())
            {
                if (!layer.Labels.ContainsKey(SnapshotLabels.Snapshotter) || layer.Labels.ContainsKey(SnapshotLabels.Removing) ||
                    !layer.Labels.ContainsKey(SnapshotLabels.Name) || layer.IsSealed || _mounter.FindDevice(layer.Id) is not null)
                {
                    continue;
                }

                bool writable = layer.Labels.GetValueOrDefault(SnapshotLabels.Kind) != "view";
                try
                {
                    string device = await _mounter.AttachDeviceAsync(layer.Id, writable, ct).ConfigureAwait(false);
                    Log.Reattached(_logger, layer.Labels[SnapshotLabels.Name], layer.Id, device);
                }
                catch (BlockDriverException ex)
                {
                    // Mounts attaches it when asked; one layer that cannot come back does not keep the others out.
                    Log.ReattachFailed(_logger, layer.Labels[SnapshotLabels.Name], layer.Id, ex.Message);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Detaches every device this snapshotter attached that nobody has mounted; logs the ones still
    /// mounted (the mounter's disposal cuts them off).</summary>
    public async Task StopAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            foreach ((string layerId, string device) in _mounter.ListDevices())
            {
                if (_store.Find(layerId) is not { } layer || !layer.Labels.ContainsKey(SnapshotLabels.Snapshotter))
                {
                    continue;
                }

                try
                {
                    await _mounter.DetachDeviceAsync(layerId).ConfigureAwait(false);
                }
                catch (BlockDriverException ex)
                {
                    Log.DetachAtStopFailed(_logger, layerId, device, ex.Message);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Releases the operation lock; the devices stay with the mounter (see <see cref="StopAsync"/>).</summary>
    public void Dispose() => _gate.Dispose();

    /// <summary>Creates active snapshot <paramref name="key"/> over committed <paramref name="parent"/> ("" for an
    /// empty file system) and returns its writable mounts.</summary>
    public Task<IReadOnlyList<SnapshotMount>> PrepareAsync(string snapshotter, string key, string parent, IReadOnlyDictionary<string, string> labels, CancellationToken ct = default) =>
        CreateAsync(snapshotter, key, parent, labels, SnapshotKind.Active, ct);

    /// <summary>Creates view <paramref name="key"/> of committed <paramref name="parent"/> ("" for an empty file
    /// system) and returns its read-only mounts.</summary>
    public Task<IReadOnlyList<SnapshotMount>> ViewAsync(string snapshotter, string key, string parent, IReadOnlyDictionary<string, string> labels, CancellationToken ct = default) =>
        CreateAsync(snapshotter, key, parent, labels, SnapshotKind.View, ct);

    /// <summary>The mounts of active snapshot or view <paramref name="key"/> (attaching it first if a restart left it
    /// detached).</summary>
    public async Task<IReadOnlyList<SnapshotMount>> MountsAsync(string snapshotter, string key, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            SnapshotInfo info = Get(snapshotter, key);
            if (info.Kind == SnapshotKind.Committed)
            {
                throw new BlockDriverException(ErrorKind.ReadOnly, $"snapshot {key} is committed; only active snapshots and views have mounts.");
            }

            string device = _mounter.FindDevice(info.LayerId)
                ?? await _mounter.AttachDeviceAsync(info.LayerId, info.Kind == SnapshotKind.Active, ct).ConfigureAwait(false);

            // An active snapshot already mounted (a running container's root) cannot be mounted from its device a
            // second time with other flags: containerd's differ mounts it read-only to diff it (docker commit of a
            // running container), and ext4 refuses that with EBUSY. A bind of the mounted file system can be.
            if (info.Kind == SnapshotKind.Active && LayerMounter.WholeFileSystemMountPoints(device) is [string mounted, ..])
            {
                return [new SnapshotMount("bind", mounted, ["rbind"])];
            }

            return MountsFor(info.Kind, device);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Commits active snapshot <paramref name="key"/> as <paramref name="name"/> with <paramref name="labels"/>;
    /// the key is gone. Not mounted: its device is detached and its layer sealed. Mounted (in this process's mount
    /// namespace): everything written through the mount so far becomes the committed snapshot, a new sealed layer,
    /// and the mount goes on over a retired empty child of it (see <see cref="CommitMountedAsync"/>).</summary>
    public async Task CommitAsync(string snapshotter, string name, string key, IReadOnlyDictionary<string, string> labels, CancellationToken ct = default)
    {
        RequireName(name, "name");
        CheckLabels(labels);
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            SnapshotInfo active = Get(snapshotter, key);
            if (active.Kind != SnapshotKind.Active)
            {
                throw new BlockDriverException(ErrorKind.ReadOnly, $"snapshot {key} is {SnapshotLabels.KindName(active.Kind)}; only an active snapshot can be committed.");
            }

            if (Find(snapshotter, name) is not null)
            {
                throw new BlockDriverException(ErrorKind.AlreadyExists, $"snapshot {name} already exists.");
            }

            if (_mounter.FindDevice(active.LayerId) is not null && _mounter.IsDeviceClaimed(active.LayerId))
            {
                await CommitMountedAsync(active, name, labels).ConfigureAwait(false);
                return;
            }

            // Not mounted: detaching flushes the layer (loop device, FUSE file, VHDX), and the layer itself is sealed.
            bool detached = false;
            if (_mounter.FindDevice(active.LayerId) is not null)
            {
                await _mounter.DetachDeviceAsync(active.LayerId, ct).ConfigureAwait(false);
                detached = true;
            }

            try
            {
                await _store.UpdateLabelsAsync(active.LayerId, new Dictionary<string, string?> { [SnapshotLabels.Committing] = name }, CancellationToken.None).ConfigureAwait(false);
                await _store.SealAsync(active.LayerId, ct: CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception failure)
            {
                await UndoCommitAsync(active, detached, failure).ConfigureAwait(false);
                throw;
            }

            await FinishCommitAsync(_store.Get(active.LayerId), name, labels).ConfigureAwait(false);
            Log.Committed(_logger, key, name, active.LayerId);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Removes snapshot <paramref name="key"/> (any kind) and its layer.</summary>
    /// <remarks>Refused while it has children (a committed snapshot's retired active layer counts while it is still
    /// mounted; once unmounted it is removed first) or its device is mounted. Once the device is detached the snapshot is
    /// marked removed; if removing the layer then fails (someone else has it open), that is logged and retried by
    /// <see cref="CleanupAsync"/> and at the next start.</remarks>
    public async Task RemoveAsync(string snapshotter, string key, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            SnapshotInfo info = Get(snapshotter, key);
            IReadOnlyList<string> children = await RemoveRetiredChildrenAsync(info.LayerId, ct).ConfigureAwait(false);
            if (children.Count > 0)
            {
                int retired = children.Count(c => _store.Find(c)?.Labels.ContainsKey(SnapshotLabels.Removing) == true);
                throw new BlockDriverException(ErrorKind.InUse, retired == 0
                    ? $"snapshot {key} has {children.Count} child(ren); remove them first."
                    : $"snapshot {key} was committed while mounted, and that mount ({string.Join(", ", children.Select(c => _mounter.FindDevice(c)).OfType<string>())}) still writes to a child of it; unmount it first.");
            }

            if (_mounter.FindDevice(info.LayerId) is not null)
            {
                await _mounter.DetachDeviceAsync(info.LayerId, ct).ConfigureAwait(false);
            }

            await _store.UpdateLabelsAsync(info.LayerId, new Dictionary<string, string?> { [SnapshotLabels.Removing] = SnapshotLabels.Time(DateTimeOffset.UtcNow) }, CancellationToken.None)
                .ConfigureAwait(false);
            try
            {
                await _store.RemoveAsync(info.LayerId, CancellationToken.None).ConfigureAwait(false);
                Log.Removed(_logger, key, info.LayerId);
            }
            catch (BlockDriverException ex)
            {
                Log.RemoveDeferred(_logger, key, info.LayerId, ex.Message);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The snapshot <paramref name="key"/>.</summary>
    public SnapshotInfo Stat(string snapshotter, string key)
    {
        _gate.Wait();
        try
        {
            return Get(snapshotter, key);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Updates the labels of snapshot <paramref name="name"/> (the only mutable field) and its update time.</summary>
    /// <param name="snapshotter">The snapshotter name.</param>
    /// <param name="name">The snapshot's key or name.</param>
    /// <param name="labels">The labels the paths take their values from.</param>
    /// <param name="paths">Empty or <c>labels</c>: replace every label; <c>labels.KEY</c>: set KEY from
    /// <paramref name="labels"/>, or delete it when absent or empty there. Any other path: InvalidArgument.</param>
    /// <param name="ct">Cancels before anything changes.</param>
    public async Task<SnapshotInfo> UpdateAsync(string snapshotter, string name, IReadOnlyDictionary<string, string> labels, IReadOnlyList<string> paths, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(paths);
        CheckLabels(labels);
        bool replaceAll = paths.Count == 0;
        var keys = new List<string>();
        foreach (string path in paths)
        {
            if (path == "labels")
            {
                replaceAll = true;
            }
            else if (path.StartsWith("labels.", StringComparison.Ordinal) && path.Length > "labels.".Length)
            {
                keys.Add(path["labels.".Length..]);
            }
            else
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument, $"cannot update field {path} of snapshot {name}: only labels are mutable.");
            }
        }

        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            SnapshotInfo info = Get(snapshotter, name);
            var changes = new Dictionary<string, string?>(StringComparer.Ordinal);
            if (replaceAll)
            {
                foreach (string key in info.Labels.Keys)
                {
                    changes[SnapshotLabels.UserPrefix + key] = null;
                }

                foreach ((string key, string value) in labels)
                {
                    changes[SnapshotLabels.UserPrefix + key] = value.Length > 0 ? value : null;
                }
            }

            foreach (string key in keys)
            {
                changes[SnapshotLabels.UserPrefix + key] = labels.TryGetValue(key, out string? value) && value.Length > 0 ? value : null;
            }

            changes[SnapshotLabels.Updated] = SnapshotLabels.Time(DateTimeOffset.UtcNow);
            Layer layer = await _store.UpdateLabelsAsync(info.LayerId, changes, CancellationToken.None).ConfigureAwait(false);
            return ToInfo(layer);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Every snapshot of <paramref name="snapshotter"/> that <paramref name="filter"/> matches, parents
    /// before children.</summary>
    public IReadOnlyList<SnapshotInfo> List(string snapshotter, SnapshotFilter filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        _gate.Wait();
        try
        {
            IReadOnlyList<Layer> layers = _store.List();
            var byId = layers.ToDictionary(l => l.Id, StringComparer.Ordinal);
            return [.. layers.Where(l => SnapshotLabels.IsLive(l, snapshotter)).Select(l => SnapshotLabels.ToInfo(l, byId)).Where(filter.Matches)];
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>What snapshot <paramref name="key"/> itself uses, excluding its parents.</summary>
    public async Task<SnapshotUsage> UsageAsync(string snapshotter, string key, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            SnapshotInfo info = Get(snapshotter, key);
            Layer layer = _store.Get(info.LayerId);
            long size = SparseFile.AllocatedBytes(layer.Path);
            long used = await UsedInodesAsync(layer, ct).ConfigureAwait(false);
            long parentUsed = layer.Parent is string parent ? await UsedInodesAsync(_store.Get(parent), ct).ConfigureAwait(false) : 0;
            return new SnapshotUsage(size, Math.Max(0, used - parentUsed));
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Finishes interrupted work of <paramref name="snapshotter"/> (null: of every snapshotter name): a
    /// commit that sealed its layer but did not rename it is completed, one that did not seal it is forgotten (the
    /// snapshot stays active), and layers of removed snapshots are removed. Live snapshots are never touched.</summary>
    /// <returns>How many layers were fixed or removed.</returns>
    public async Task<int> CleanupAsync(string? snapshotter, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await CleanupCoreAsync(snapshotter, ct).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<IReadOnlyList<SnapshotMount>> CreateAsync(string snapshotter, string key, string parent, IReadOnlyDictionary<string, string> labels, SnapshotKind kind, CancellationToken ct)
    {
        RequireName(key, "key");
        ArgumentNullException.ThrowIfNull(parent);
        CheckLabels(labels);
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (Find(snapshotter, key) is not null)
            {
                throw new BlockDriverException(ErrorKind.AlreadyExists, $"snapshot {key} already exists.");
            }

            string parentLayer;
            if (parent.Length == 0)
            {
                parentLayer = (await BaseFilesystem.EnsureAsync(_store, _mounter, BaseFilesystem.LayerIdFor(_capacity), _capacity, ct).ConfigureAwait(false)).Id;
            }
            else
            {
                SnapshotInfo p = Find(snapshotter, parent) ?? throw new BlockDriverException(ErrorKind.NotFound, $"parent snapshot {parent} does not exist.");
                if (p.Kind != SnapshotKind.Committed)
                {
                    throw new BlockDriverException(ErrorKind.InvalidArgument, $"parent {parent} is {SnapshotLabels.KindName(p.Kind)}, not a committed snapshot.");
                }

                parentLayer = p.LayerId;
            }

            string now = SnapshotLabels.Time(DateTimeOffset.UtcNow);
            var layerLabels = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                [SnapshotLabels.Snapshotter] = snapshotter,
                [SnapshotLabels.Name] = key,
                [SnapshotLabels.Kind] = SnapshotLabels.KindName(kind),
                [SnapshotLabels.Created] = now,
                [SnapshotLabels.Updated] = now,
            };
            foreach ((string k, string v) in labels)
            {
                if (v.Length > 0)
                {
                    layerLabels[SnapshotLabels.UserPrefix + k] = v;
                }
            }

            Layer layer = await _store.CreateAsync(new LayerSpec
            {
                Id = "ctrd-" + LayerIds.Generate(),
                Parent = parentLayer,
                Kind = LayerKind.Container,
                Labels = layerLabels,
            }, ct).ConfigureAwait(false);
            string device;
            try
            {
                device = await _mounter.AttachDeviceAsync(layer.Id, writable: kind == SnapshotKind.Active, ct).ConfigureAwait(false);
            }
            catch (Exception failure)
            {
                try
                {
                    await _store.RemoveAsync(layer.Id, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception cleanup)
                {
                    throw new AggregateException($"attaching snapshot {key} failed, and so did removing its layer {layer.Id}.", failure, cleanup);
                }

                throw;
            }

            Log.Created(_logger, SnapshotLabels.KindName(kind), key, layer.Id, device);
            return MountsFor(kind, device);
        }
        finally
        {
            _gate.Release();
        }
    }

    // Commit of an active snapshot whose device is mounted (containerd's contract allows it: the mount is the caller's
    // and outlives the key). The mounter freezes the file system and turns the layer's file into a new sealed layer,
    // the committed snapshot, with everything written through the mount so far; the active layer goes on as its empty
    // child under the same loop device and mount, marked removed: writes through the old mount after Commit land
    // there, never in the committed snapshot, and are dropped when the layer is removed once nobody has it mounted
    // (by Remove of the committed snapshot, Cleanup, or the next start). The labels record the plan first, so that an
    // interrupted commit is finished or forgotten by Cleanup.
    private async Task CommitMountedAsync(SnapshotInfo active, string name, IReadOnlyDictionary<string, string> labels)
    {
        string committedId = "ctrd-" + LayerIds.Generate();
        await _store.UpdateLabelsAsync(active.LayerId, new Dictionary<string, string?>
        {
            [SnapshotLabels.Committing] = name,
            [SnapshotLabels.CommitLayer] = committedId,
        }, CancellationToken.None).ConfigureAwait(false);
        Layer committed;
        try
        {
            committed = await _mounter.SnapshotDeviceAsync(active.LayerId, committedId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception failure) when (_store.Find(committedId) is null)
        {
            try
            {
                await _store.UpdateLabelsAsync(active.LayerId, new Dictionary<string, string?>
                {
                    [SnapshotLabels.Committing] = null,
                    [SnapshotLabels.CommitLayer] = null,
                }, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception undo)
            {
                throw new AggregateException($"committing mounted snapshot {active.Name} failed, and so did undoing it.", failure, undo);
            }

            throw;
        }

        await FinishMountedCommitAsync(_store.Get(active.LayerId), committed, name, labels).ConfigureAwait(false);
        Log.CommittedMounted(_logger, active.Name, name, committed.Id, active.LayerId);
        if (!_mounter.IsDeviceClaimed(active.LayerId))
        {
            // The mount went while the commit waited for it (it was held only by a copy in a new mount namespace).
            await RemoveRetiredChildrenAsync(committed.Id, CancellationToken.None).ConfigureAwait(false);
        }
    }

    // The sealed layer holds the committed data: make it the committed snapshot (the Commit's labels, or the active
    // snapshot's when they were lost with an interrupted request) and retire the active layer.
    private async Task FinishMountedCommitAsync(Layer activeLayer, Layer committed, string name, IReadOnlyDictionary<string, string>? labels)
    {
        string now = SnapshotLabels.Time(DateTimeOffset.UtcNow);
        var changes = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            [SnapshotLabels.Snapshotter] = activeLayer.Labels[SnapshotLabels.Snapshotter],
            [SnapshotLabels.Name] = name,
            [SnapshotLabels.Kind] = SnapshotLabels.KindName(SnapshotKind.Committed),
            [SnapshotLabels.Created] = now,
            [SnapshotLabels.Updated] = now,
        };
        if (labels is null)
        {
            foreach ((string key, string value) in activeLayer.Labels.Where(l => l.Key.StartsWith(SnapshotLabels.UserPrefix, StringComparison.Ordinal)))
            {
                changes[key] = value;
            }
        }
        else
        {
            foreach ((string key, string value) in labels)
            {
                changes[SnapshotLabels.UserPrefix + key] = value.Length > 0 ? value : null;
            }
        }

        await _store.UpdateLabelsAsync(committed.Id, changes, CancellationToken.None).ConfigureAwait(false);
        await _store.UpdateLabelsAsync(activeLayer.Id, new Dictionary<string, string?>
        {
            [SnapshotLabels.Removing] = now,
            [SnapshotLabels.Committing] = null,
            [SnapshotLabels.CommitLayer] = null,
        }, CancellationToken.None).ConfigureAwait(false);
    }

    // Removes the children of LAYERID that are retired active layers of a commit made while mounted and are no longer
    // mounted; returns the children left (live snapshots, and retired layers still mounted).
    private async Task<IReadOnlyList<string>> RemoveRetiredChildrenAsync(string layerId, CancellationToken ct)
    {
        var left = new List<string>();
        foreach (string child in _store.Children(layerId))
        {
            if (_store.Find(child) is not { } layer || !layer.Labels.ContainsKey(SnapshotLabels.Snapshotter) ||
                !layer.Labels.ContainsKey(SnapshotLabels.Removing) || _store.Children(child).Count > 0)
            {
                left.Add(child);
                continue;
            }

            try
            {
                if (_mounter.FindDevice(child) is not null)
                {
                    await _mounter.DetachDeviceAsync(child, ct).ConfigureAwait(false);
                }

                await _store.RemoveAsync(child, ct).ConfigureAwait(false);
                Log.RetiredRemoved(_logger, child);
            }
            catch (BlockDriverException ex) when (ex.Kind == ErrorKind.InUse)
            {
                left.Add(child);
            }
        }

        return left;
    }

    private async Task UndoCommitAsync(SnapshotInfo active, bool detached, Exception failure)
    {
        try
        {
            if (!_store.Get(active.LayerId).IsSealed)
            {
                await _store.UpdateLabelsAsync(active.LayerId, new Dictionary<string, string?> { [SnapshotLabels.Committing] = null }, CancellationToken.None).ConfigureAwait(false);
                if (detached)
                {
                    await _mounter.AttachDeviceAsync(active.LayerId, writable: true, CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
        catch (Exception undo)
        {
            throw new AggregateException($"committing snapshot {active.Name} failed, and so did undoing it.", failure, undo);
        }
    }

    // The layer is sealed: give it the committed name, kind, times and labels, dropping the active snapshot's labels.
    private async Task FinishCommitAsync(Layer sealedLayer, string name, IReadOnlyDictionary<string, string>? labels)
    {
        string now = SnapshotLabels.Time(DateTimeOffset.UtcNow);
        var changes = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            [SnapshotLabels.Name] = name,
            [SnapshotLabels.Kind] = SnapshotLabels.KindName(SnapshotKind.Committed),
            [SnapshotLabels.Created] = now,
            [SnapshotLabels.Updated] = now,
            [SnapshotLabels.Committing] = null,
        };
        if (labels is not null)
        {
            foreach (string key in sealedLayer.Labels.Keys.Where(k => k.StartsWith(SnapshotLabels.UserPrefix, StringComparison.Ordinal)))
            {
                changes[key] = null;
            }

            foreach ((string key, string value) in labels)
            {
                changes[SnapshotLabels.UserPrefix + key] = value.Length > 0 ? value : null;
            }
        }

        await _store.UpdateLabelsAsync(sealedLayer.Id, changes, CancellationToken.None).ConfigureAwait(false);
    }

    private async Task<int> CleanupCoreAsync(string? snapshotter, CancellationToken ct)
    {
        int fixedCount = 0;
        foreach (Layer layer in _store.List().Reverse())
        {
            ct.ThrowIfCancellationRequested();
            if (!layer.Labels.TryGetValue(SnapshotLabels.Snapshotter, out string? owner) || (snapshotter is not null && owner != snapshotter))
            {
                continue;
            }

            if (layer.Labels.ContainsKey(SnapshotLabels.Removing))
            {
                try
                {
                    if (_mounter.FindDevice(layer.Id) is not null)
                    {
                        await _mounter.DetachDeviceAsync(layer.Id, ct).ConfigureAwait(false);
                    }

                    await _store.RemoveAsync(layer.Id, ct).ConfigureAwait(false);
                    Log.CleanedUp(_logger, layer.Id, "removed the layer of a removed snapshot");
                    fixedCount++;
                }
                catch (BlockDriverException ex)
                {
                    Log.RemoveDeferred(_logger, layer.Labels.GetValueOrDefault(SnapshotLabels.Name) ?? "", layer.Id, ex.Message);
                }
            }
            else if (layer.Labels.TryGetValue(SnapshotLabels.Committing, out string? name))
            {
                if (layer.Labels.TryGetValue(SnapshotLabels.CommitLayer, out string? committedId))
                {
                    // A commit of a mounted snapshot: finished once its sealed layer exists (the snapshot store's
                    // journal completed or undid the snapshot itself), else forgotten.
                    if (_store.Find(committedId) is { IsSealed: true } committed)
                    {
                        await FinishMountedCommitAsync(layer, committed, name, labels: null).ConfigureAwait(false);
                        Log.CleanedUp(_logger, layer.Id, $"finished the commit as {name} (layer {committedId})");
                    }
                    else
                    {
                        await _store.UpdateLabelsAsync(layer.Id, new Dictionary<string, string?> { [SnapshotLabels.Committing] = null, [SnapshotLabels.CommitLayer] = null }, ct)
                            .ConfigureAwait(false);
                        Log.CleanedUp(_logger, layer.Id, $"forgot an unfinished commit as {name}");
                    }
                }
                else if (layer.IsSealed)
                {
                    // Sealed but not renamed: the commit happened; its labels were lost with the request, so the
                    // active snapshot's stay.
                    await FinishCommitAsync(layer, name, labels: null).ConfigureAwait(false);
                    Log.CleanedUp(_logger, layer.Id, $"finished the commit as {name}");
                }
                else
                {
                    await _store.UpdateLabelsAsync(layer.Id, new Dictionary<string, string?> { [SnapshotLabels.Committing] = null }, ct).ConfigureAwait(false);
                    Log.CleanedUp(_logger, layer.Id, $"forgot an unfinished commit as {name}");
                }

                fixedCount++;
            }
        }

        return fixedCount;
    }

    // ext4's superblock (1024 bytes at offset 1024): s_inodes_count at 0x00 and s_free_inodes_count at 0x10 (u32 LE),
    // s_magic 0xEF53 at 0x38. An attached layer is read through its loop device, so that a live file system's last
    // superblock write counts even before it reaches the layer file.
    private async Task<long> UsedInodesAsync(Layer layer, CancellationToken ct)
    {
        byte[] block = new byte[4096];
        if (_mounter.FindDevice(layer.Id) is string device)
        {
            using var handle = File.OpenHandle(device, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            await RandomAccess.ReadAsync(handle, block, 0, ct).ConfigureAwait(false);
        }
        else
        {
            await using LayerDevice open = await _store.OpenLayerAsync(layer.Id, writable: false, ct).ConfigureAwait(false);
            await open.ReadAsync(0, block, ct).ConfigureAwait(false);
        }

        ReadOnlySpan<byte> super = block.AsSpan(1024, 1024);
        if (BinaryPrimitives.ReadUInt16LittleEndian(super[0x38..]) != 0xEF53)
        {
            return 0;
        }

        return (long)BinaryPrimitives.ReadUInt32LittleEndian(super) - BinaryPrimitives.ReadUInt32LittleEndian(super[0x10..]);
    }

    private static IReadOnlyList<SnapshotMount> MountsFor(SnapshotKind kind, string device) =>
    [
        // rw,discard: deleting files frees the layer's storage, as the mounter's own read-write mounts do.
        // ro,noload: no journal replay, so mounting a view writes nothing (its loop device is read-only anyway).
        new SnapshotMount("ext4", device, kind == SnapshotKind.Active ? ["rw", "discard"] : ["ro", "noload"]),
    ];

    private SnapshotInfo Get(string snapshotter, string key) =>
        Find(snapshotter, key) ?? throw new BlockDriverException(ErrorKind.NotFound, $"snapshot {key} does not exist.");

    private SnapshotInfo? Find(string snapshotter, string key)
    {
        IReadOnlyList<Layer> layers = _store.List();
        Layer? layer = layers.FirstOrDefault(l => SnapshotLabels.IsLive(l, snapshotter) && l.Labels[SnapshotLabels.Name] == key);
        return layer is null ? null : SnapshotLabels.ToInfo(layer, layers.ToDictionary(l => l.Id, StringComparer.Ordinal));
    }

    private SnapshotInfo ToInfo(Layer layer) =>
        SnapshotLabels.ToInfo(layer, _store.List().ToDictionary(l => l.Id, StringComparer.Ordinal));

    private static void RequireName(string value, string what)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"the snapshot {what} must not be empty.");
        }
    }

    private static void CheckLabels(IReadOnlyDictionary<string, string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        foreach ((string key, string value) in labels)
        {
            if (key.Length == 0)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument, "a label needs a non-empty key.");
            }

            if (Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(value) > MaxLabelBytes)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument, $"label {key}: key and value exceed {MaxLabelBytes} bytes.");
            }
        }
    }
}
