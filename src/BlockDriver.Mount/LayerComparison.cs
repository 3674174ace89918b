using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Mount.Tar;

namespace BlockDriver.Mount;

/// <summary>
/// A layer and the layer it is compared with (an ancestor in its chain, or nothing: an empty tree), both mounted
/// read-only for as long as the comparison is open: the mounts behind Changes, DiffSize and Diff. Opening mounts
/// (or shares the mounts that are there: a running container's layer, a parent another comparison reads); disposing
/// unmounts what it took.
/// </summary>
/// <remarks>
/// Opening is the only step that needs the caller's locks on the layers (it checks the chain and takes mount
/// references); reading and streaming need none, because the references keep both file systems mounted. Callers
/// therefore hold their locks around <see cref="OpenAsync"/> only, never across a streamed diff that a slow or
/// stalled client reads (that wedged dockerd's layer Register, which opens a Diff and creates a layer over the same
/// parent before reading it).
/// </remarks>
public sealed class LayerComparison : IAsyncDisposable
{
    private readonly LayerMounter _mounter;
    private readonly List<string> _mounted;
    private bool _disposed;

    private LayerComparison(LayerMounter mounter, List<string> mounted, string layerId, string? baseLayerId, string root, string? baseRoot)
    {
        _mounter = mounter;
        _mounted = mounted;
        LayerId = layerId;
        BaseLayerId = baseLayerId;
        Root = root;
        BaseRoot = baseRoot;
    }

    /// <summary>The layer whose content is compared.</summary>
    public string LayerId { get; }

    /// <summary>The ancestor it is compared with; null when it is compared with an empty tree.</summary>
    public string? BaseLayerId { get; }

    /// <summary>Where the layer is mounted.</summary>
    public string Root { get; }

    /// <summary>Where the base layer is mounted; null for an empty tree.</summary>
    public string? BaseRoot { get; }

    /// <summary>Mounts layer <paramref name="layerId"/> and <paramref name="baseLayerId"/> (null: compare with an
    /// empty tree) read-only, sharing mounts that exist.</summary>
    /// <exception cref="BlockDriverException">NotFound (unknown layer), InvalidArgument (the base is not an ancestor
    /// of the layer), the errors of <see cref="LayerMounter.MountOrShareAsync"/>.</exception>
    public static async Task<LayerComparison> OpenAsync(LayerMounter mounter, string layerId, string? baseLayerId, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(mounter);
        ArgumentNullException.ThrowIfNull(layerId);
        Layer layer = mounter.Store.Get(layerId);
        if (baseLayerId is not null && !IsAncestor(mounter.Store, layer, baseLayerId))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"layer {baseLayerId} is not an ancestor of layer {layer.Id}: a layer is compared with a layer of its own chain.");
        }

        var mounted = new List<string>();
        try
        {
            string root = await LayerContent.UseOrMountAsync(mounter, layer.Id, readOnly: true, mounted, ct).ConfigureAwait(false);
            string? baseRoot = baseLayerId is null
                ? null
                : await LayerContent.UseOrMountAsync(mounter, baseLayerId, readOnly: true, mounted, ct).ConfigureAwait(false);
            return new LayerComparison(mounter, mounted, layer.Id, baseLayerId, root, baseRoot);
        }
        catch (Exception ex)
        {
            await LayerContent.UnmountAllAsync(mounter, mounted, ex).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Whether <paramref name="ancestorId"/> is a strict ancestor of <paramref name="layer"/>.</summary>
    public static bool IsAncestor(ILayerStore store, Layer layer, string ancestorId)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(layer);
        int guard = 0;
        for (string? parent = layer.Parent; parent is not null; parent = store.Get(parent).Parent)
        {
            if (parent == ancestorId)
            {
                return true;
            }

            if (++guard > 1 << 16)
            {
                throw new BlockDriverException(ErrorKind.Corrupt, $"layer {layer.Id}'s chain does not end: the catalog is damaged.");
            }
        }

        return false;
    }

    /// <summary>Added, modified and deleted paths, parents before children (<see cref="LayerChanges.Compute"/>).</summary>
    public IReadOnlyList<LayerChange> Changes()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return LayerChanges.Compute(BaseRoot, Root);
    }

    /// <summary>Bytes of regular-file content added or modified: Docker's DiffSize.</summary>
    public long DiffSize()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return LayerChanges.Size(Root, LayerChanges.Compute(BaseRoot, Root));
    }

    /// <summary>Writes the layer tar of the differences (deletions as whiteouts) to <paramref name="output"/>.</summary>
    public Task<IReadOnlyList<LayerChange>> WriteDiffAsync(Stream output, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(output);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return LayerTarWriter.WriteDiffAsync(BaseRoot, Root, output, ct);
    }

    /// <summary>Drops the mount references taken at open (unmounting what nobody else holds).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await LayerContent.UnmountAllAsync(_mounter, _mounted, failure: null).ConfigureAwait(false);
    }
}
