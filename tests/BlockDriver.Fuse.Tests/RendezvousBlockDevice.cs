using BlockDriver.Abstractions;

namespace BlockDriver.Fuse.Tests;

/// <summary>A device whose reads block, on the thread that calls them, until <c>parties</c> reads are inside at
/// once (or 10 s pass, and the read fails). Served inline by the FUSE readers, the reads can only meet if that many
/// reader threads take requests concurrently.</summary>
internal sealed class RendezvousBlockDevice(IBlockDevice inner, int parties) : IBlockDevice
{
    private readonly Barrier _barrier = new(parties);

    public long Length => inner.Length;

    public int SectorSize => inner.SectorSize;

    public bool IsReadOnly => inner.IsReadOnly;

    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct = default)
    {
        if (!_barrier.SignalAndWait(TimeSpan.FromSeconds(10), ct))
        {
            throw new TimeoutException("The other reads never arrived: requests are not served concurrently.");
        }

        return inner.ReadAsync(offset, buffer, ct);
    }

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, bool forceUnitAccess = false, CancellationToken ct = default) =>
        inner.WriteAsync(offset, data, forceUnitAccess, ct);

    public ValueTask FlushAsync(CancellationToken ct = default) => inner.FlushAsync(ct);

    public ValueTask TrimAsync(long offset, long length, CancellationToken ct = default) => inner.TrimAsync(offset, length, ct);

    public ValueTask WriteZeroesAsync(long offset, long length, CancellationToken ct = default) => inner.WriteZeroesAsync(offset, length, ct);

    public IAsyncEnumerable<Extent> MapAsync(long offset, long length, CancellationToken ct = default) => inner.MapAsync(offset, length, ct);

    public async ValueTask DisposeAsync()
    {
        _barrier.Dispose();
        await inner.DisposeAsync();
    }
}
