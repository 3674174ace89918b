using BlockDriver.Abstractions;
using BlockDriver.Vhdx;

namespace BlockDriver.Core;

/// <summary>An open layer: the block device of its whole chain, plus the leases that keep others from removing,
/// merging or writing what it reads. Returned by <see cref="ILayerStore.OpenLayerAsync"/>; the caller disposes it, which
/// flushes (for a writable layer), closes the files and releases the leases.</summary>
/// <remarks>Thread-safe as <see cref="VhdxDisk"/> is: concurrent reads and writes are allowed.</remarks>
public sealed class LayerDevice : IBlockDevice
{
    private readonly VhdxDisk _disk;
    private readonly IReadOnlyList<IDisposable> _leases;
    private int _disposed;

    internal LayerDevice(Layer layer, VhdxDisk disk, IReadOnlyList<IDisposable> leases)
    {
        Layer = layer;
        _disk = disk;
        _leases = leases;
    }

    /// <summary>The layer as it was when opened.</summary>
    public Layer Layer { get; }

    /// <summary>The VHDX chain underneath, for callers that want chain-level facts (which file holds a range).</summary>
    public VhdxDisk Disk => _disk;

    /// <inheritdoc/>
    public long Length => _disk.Length;

    /// <inheritdoc/>
    public int SectorSize => _disk.SectorSize;

    /// <inheritdoc/>
    public bool IsReadOnly => _disk.IsReadOnly;

    /// <inheritdoc/>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct = default) => _disk.ReadAsync(offset, buffer, ct);

    /// <inheritdoc/>
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, bool forceUnitAccess = false, CancellationToken ct = default) =>
        _disk.WriteAsync(offset, data, forceUnitAccess, ct);

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken ct = default) => _disk.FlushAsync(ct);

    /// <inheritdoc/>
    public ValueTask TrimAsync(long offset, long length, CancellationToken ct = default) => _disk.TrimAsync(offset, length, ct);

    /// <inheritdoc/>
    public ValueTask WriteZeroesAsync(long offset, long length, CancellationToken ct = default) => _disk.WriteZeroesAsync(offset, length, ct);

    /// <inheritdoc/>
    public IAsyncEnumerable<Extent> MapAsync(long offset, long length, CancellationToken ct = default) => _disk.MapAsync(offset, length, ct);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            await _disk.DisposeAsync().ConfigureAwait(false);
        }
        finally
        {
            foreach (IDisposable lease in _leases.Reverse())
            {
                lease.Dispose();
            }
        }
    }
}
