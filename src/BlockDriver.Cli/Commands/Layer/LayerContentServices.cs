using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary>Chooses the <see cref="ILayerContentService"/> a command uses.</summary>
internal static class LayerContentServices
{
    /// <summary>The service for <paramref name="store"/>. Today always this process's own mounter; when the daemon's
    /// admin API offers apply/changes/diff, this is where a running daemon is detected and its client returned, so
    /// that mounts stay with the process that owns the store's FUSE mount. The caller disposes the result.</summary>
    public static ILayerContentService Open(LayerStore store) => new LocalLayerContentService(store);
}
