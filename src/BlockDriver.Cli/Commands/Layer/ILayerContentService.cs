using BlockDriver.Mount.Tar;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary>
/// What the commands that work inside layers' file systems (<c>layer create</c> over the base file system layer,
/// <c>layer apply</c>, <c>layer changes</c>, <c>layer diff</c>) need from whoever mounts layers: this process
/// (<see cref="LocalLayerContentService"/>) or the store's running daemon through its admin API
/// (<see cref="DaemonLayerContentService"/>); <see cref="LayerContentServices.Open"/> is the one place that chooses.
/// </summary>
/// <remarks>Errors are <see cref="Abstractions.BlockDriverException"/>s as <see cref="Mount.LayerContent"/> throws
/// them. Disposing releases whatever the service mounted; nothing stays mounted after it.</remarks>
internal interface ILayerContentService : IAsyncDisposable
{
    /// <summary>The id of the store's sealed base file system layer of <paramref name="capacity"/> bytes
    /// (<see cref="Mount.BaseFilesystem.LayerIdFor"/>), made now (mkfs.ext4) if there is none.</summary>
    Task<string> EnsureBaseFilesystemAsync(long capacity, CancellationToken ct);

    /// <summary>Applies layer tar <paramref name="tar"/> (read to its end; the caller disposes it) to writable layer
    /// <paramref name="layerId"/>; returns the bytes of file content written.</summary>
    Task<long> ApplyAsync(string layerId, Stream tar, CancellationToken ct);

    /// <summary>What layer <paramref name="layerId"/> changed relative to its parent, parents before children.</summary>
    Task<IReadOnlyList<LayerChange>> ChangesAsync(string layerId, CancellationToken ct);

    /// <summary>Writes the layer tar of <paramref name="layerId"/>'s differences from its parent to
    /// <paramref name="output"/> (not disposed). A failure part way leaves <paramref name="output"/> incomplete.</summary>
    Task DiffAsync(string layerId, Stream output, CancellationToken ct);
}
