using BlockDriver.Core;
using BlockDriver.Mount;
using BlockDriver.Mount.Tar;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary>Layer content operations in this process: a <see cref="LayerMounter"/> of its own (FUSE mount of the
/// store's layer files, loop devices, ext4 mounts in temporary directories), created on first use and disposed with
/// the service, which unmounts and detaches everything. Needs root, loop devices and FUSE; fails with InUse while
/// another process (a daemon) has the store's FUSE mount.</summary>
internal sealed class LocalLayerContentService(LayerStore store) : ILayerContentService
{
    private LayerMounter? _mounter;

    private LayerMounter Mounter => _mounter ??= new LayerMounter(store);

    public async Task<string> EnsureBaseFilesystemAsync(long capacity, CancellationToken ct)
    {
        Core.Layer layer = await BaseFilesystem.EnsureAsync(store, Mounter, BaseFilesystem.LayerIdFor(capacity), capacity, ct).ConfigureAwait(false);
        return layer.Id;
    }

    public Task<long> ApplyAsync(string layerId, Stream tar, CancellationToken ct) => LayerContent.ApplyTarAsync(Mounter, layerId, tar, ct);

    public Task<IReadOnlyList<LayerChange>> ChangesAsync(string layerId, CancellationToken ct) => LayerContent.ChangesAsync(Mounter, layerId, ct);

    public Task DiffAsync(string layerId, Stream output, CancellationToken ct) => LayerContent.DiffAsync(Mounter, layerId, output, ct);

    public async ValueTask DisposeAsync()
    {
        if (_mounter is not null)
        {
            await _mounter.DisposeAsync().ConfigureAwait(false);
        }
    }
}
