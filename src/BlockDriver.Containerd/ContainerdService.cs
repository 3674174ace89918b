using BlockDriver.Daemon;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BlockDriver.Containerd;

/// <summary>The hosted service that owns the daemon's <see cref="BlockSnapshotter"/>: started after the store (it
/// reattaches the snapshots' devices and finishes interrupted commits and removals), stopped after the front end
/// (it detaches what nobody has mounted) and before the store.</summary>
public sealed class ContainerdService(StoreService store, IOptions<ContainerdOptions> options, ILoggerFactory loggers) : IHostedService
{
    private BlockSnapshotter? _snapshotter;

    /// <summary>The snapshotter; valid between start and stop.</summary>
    public BlockSnapshotter Snapshotter => _snapshotter ?? throw new InvalidOperationException("The containerd snapshotter is not started.");

    /// <inheritdoc/>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var snapshotter = new BlockSnapshotter(store.Store, store.Mounter, options.Value.Capacity, loggers.CreateLogger<BlockSnapshotter>());
        await snapshotter.StartAsync(cancellationToken).ConfigureAwait(false);
        _snapshotter = snapshotter;
    }

    /// <inheritdoc/>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_snapshotter is { } snapshotter)
        {
            _snapshotter = null;
            await snapshotter.StopAsync().ConfigureAwait(false);
            snapshotter.Dispose();
        }
    }
}
