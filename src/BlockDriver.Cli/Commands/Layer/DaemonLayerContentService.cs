using BlockDriver.Cli.Commands.Daemon;
using BlockDriver.Mount.Tar;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary>Layer content operations done by the store's running daemon, through its admin API
/// (<see cref="AdminClient"/>): the daemon mounts what each one needs and unmounts it before it answers.</summary>
internal sealed class DaemonLayerContentService(AdminClient client) : ILayerContentService
{
    public Task<string> EnsureBaseFilesystemAsync(long capacity, CancellationToken ct) => client.EnsureBaseFilesystemAsync(capacity, ct);

    public Task<long> ApplyAsync(string layerId, Stream tar, CancellationToken ct) => client.ApplyAsync(layerId, tar, ct);

    public Task<IReadOnlyList<LayerChange>> ChangesAsync(string layerId, CancellationToken ct) => client.ChangesAsync(layerId, ct);

    public Task DiffAsync(string layerId, Stream output, CancellationToken ct) => client.DiffAsync(layerId, output, ct);

    public ValueTask DisposeAsync()
    {
        client.Dispose();
        return ValueTask.CompletedTask;
    }
}
