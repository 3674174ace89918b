using BlockDriver.Cli.Commands.Daemon;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary>Chooses the <see cref="ILayerContentService"/> a command uses.</summary>
internal static class LayerContentServices
{
    /// <summary>The service for <paramref name="store"/>: the store's daemon when one is running (it owns the store's
    /// FUSE mount, so the mounts must be its), else this process's own mounter. The caller disposes the result.</summary>
    public static ILayerContentService Open(LayerStore store) =>
        AdminClient.IsDaemonRunning(store.Paths.Root)
            ? new DaemonLayerContentService(new AdminClient(store.Paths.Root))
            : new LocalLayerContentService(store);
}
