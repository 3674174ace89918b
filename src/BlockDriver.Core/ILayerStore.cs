using BlockDriver.Abstractions;

namespace BlockDriver.Core;

/// <summary>A store of layers: the engine Docker, containerd, the NBD server and the CLI all drive.</summary>
/// <remarks>
/// <para><b>Vocabulary.</b> A <em>layer</em> is one VHDX file with an id. A <em>base</em> layer has no parent and is
/// a dynamic VHDX of the requested capacity. Any other layer is a differencing VHDX over its <em>parent</em> and holds
/// only the sectors written to it; everything else reads through to the parent. A layer is <em>writable</em> (one
/// process may open it for writing; it has no children) or <em>sealed</em> (never written again; it may have any
/// number of children). Only sealed layers are parents. The <em>kind</em> says what a layer is for: an
/// <see cref="LayerKind.Image"/> layer, a <see cref="LayerKind.Container"/> layer, or a
/// <see cref="LayerKind.Snapshot"/>. <em>Size</em> is what a layer's own file occupies on disk; <em>virtual
/// size</em> is its size plus its ancestors' (Docker's meaning); <em>capacity</em> is the virtual disk's length.</para>
/// <para><b>Worked example.</b></para>
/// <code>
/// CreateAsync({ Id = "base", Capacity = 1 GiB })   base      image      writable   (dynamic VHDX)
/// (write into "base" via OpenLayerAsync)      base      image      writable   size = what was written
/// SealAsync("base")                                base      image      sealed
/// CreateAsync({ Id = "c1", Parent = "base" })       c1        container  writable   size ≈ 0, virtual size = base's
/// CreateAsync({ Id = "c2", Parent = "base" })       c2        container  writable   (base now shared by two)
/// SnapshotAsync("c1", "c1@1")                      c1@1      snapshot   sealed     holds c1's data so far
///                                                  c1        container  writable   now a child of c1@1, empty
/// RevertAsync("c1", "c1@1")                        c1 drops what was written since the snapshot
/// MergeAsync("c1")                                 c1@1's data moves into c1; c1@1 is gone; c1's parent is base
/// RemoveAsync("c2"), RemoveAsync("c1")             their space is freed; base can now be removed too
/// </code>
/// <para><b>Guarantees.</b> Every operation either completes or, after a crash at any point, is rolled back or
/// forward by the next opener of the store (see <see cref="Reconciliation"/>). A sealed layer's file never changes.
/// Operations that change layers are serialised across processes by a store lock; opening a layer takes leases
/// (any number of readers or one writer, across processes) so that nothing removes, merges, flattens or writes what
/// someone reads; a conflict fails at once with InUse naming the pid.</para>
/// <para><b>Errors.</b> <see cref="BlockDriverException"/>: NotFound (unknown id), AlreadyExists (id taken),
/// InvalidArgument (bad id, wrong kind or state, mismatched sizes), InUse (open elsewhere, has children),
/// ReadOnly (writing a sealed layer), Corrupt (a file that does not match the catalog).</para>
/// <para>Thread-safe.</para>
/// </remarks>
public interface ILayerStore : IAsyncDisposable
{
    /// <summary>The store directory.</summary>
    string Root { get; }

    /// <summary>What reconciliation found and did when the store was opened (empty when all was well).</summary>
    IReadOnlyList<ReconcileAction> Reconciliation { get; }

    /// <summary>Every layer, parents before children.</summary>
    IReadOnlyList<Layer> List();

    /// <summary>The layer <paramref name="id"/>.</summary>
    /// <exception cref="BlockDriverException">NotFound.</exception>
    Layer Get(string id);

    /// <summary>The layer <paramref name="id"/>, or null.</summary>
    Layer? Find(string id);

    /// <summary>Ids of the layers whose parent is <paramref name="id"/>.</summary>
    IReadOnlyList<string> Children(string id);

    /// <summary>Creates a writable layer: a blank dynamic VHDX, or a differencing VHDX over a sealed parent.</summary>
    Task<Layer> CreateAsync(LayerSpec spec, CancellationToken ct = default);

    /// <summary>Creates a writable layer whose content is <paramref name="file"/> (raw or VHDX, by content). Over a
    /// parent, only the sectors that differ from the parent are stored, and the file must be the parent's capacity.
    /// A VHDX file's parent locators are followed only to files inside <paramref name="parentDirectory"/> (symbolic
    /// links resolved; default: the file's own directory), so that a crafted file cannot make the store read, or
    /// report on, another file of the host. A file that fails leaves the store as it was.</summary>
    Task<Layer> ImportAsync(string file, LayerSpec spec, IProgress<long>? progress = null, string? parentDirectory = null, CancellationToken ct = default);

    /// <summary>Seals a writable layer that nobody has open, optionally renaming it; it becomes an image layer (a
    /// snapshot stays a snapshot).</summary>
    Task<Layer> SealAsync(string id, string? newId = null, CancellationToken ct = default);

    /// <summary>Removes a layer with no children that nobody has open, and its file.</summary>
    Task RemoveAsync(string id, CancellationToken ct = default);

    /// <summary>Freezes a writable layer's current content as a sealed snapshot (returned) and makes the writable
    /// layer continue, under the same id, as an empty child of it.</summary>
    Task<Layer> SnapshotAsync(string id, string? snapshotId = null, CancellationToken ct = default);

    /// <summary>Discards a writable layer's content and makes it an empty child of sealed layer
    /// <paramref name="snapshotId"/>, so it reads as that layer did.</summary>
    Task<Layer> RevertAsync(string id, string snapshotId, CancellationToken ct = default);

    /// <summary>A new writable container layer over sealed layer <paramref name="id"/>.</summary>
    Task<Layer> CloneAsync(string id, string? newId = null, CancellationToken ct = default);

    /// <summary>Folds a layer's parent into it: the layer keeps its id, state and content, takes its grandparent as
    /// parent, and the parent (which must have no other child) disappears.</summary>
    Task<Layer> MergeAsync(string id, CancellationToken ct = default);

    /// <summary>Rewrites a layer as a standalone base with the same content; its children stay valid.</summary>
    Task<Layer> FlattenAsync(string id, CancellationToken ct = default);

    /// <summary>Writes a layer's visible content to <paramref name="path"/> as a raw file or a standalone VHDX.</summary>
    Task ExportAsync(string id, string path, ExportFormat format, IProgress<long>? progress = null, CancellationToken ct = default);

    /// <summary>Opens a layer's chain as a block device: for writing (writable layers only) or for reading.</summary>
    Task<LayerDevice> OpenLayerAsync(string id, bool writable, CancellationToken ct = default);

    /// <summary>Adds or replaces labels (null value: remove the label).</summary>
    Task<Layer> UpdateLabelsAsync(string id, IReadOnlyDictionary<string, string?> changes, CancellationToken ct = default);

    /// <summary>Size figures of one layer.</summary>
    LayerUsage GetUsage(string id);

    /// <summary>Size figures of the whole store.</summary>
    StoreUsage GetStoreUsage();
}
