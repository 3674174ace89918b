using System.Collections.Concurrent;
using BlockDriver.Abstractions;

namespace BlockDriver.Nbd.Tests.Support;

/// <summary>A memory device whose reads and writes at gated offsets wait until the test opens the gate, and which
/// counts how many calls run at once. Also models durability: writes land in a volatile copy, and only
/// <see cref="FlushAsync"/> (or FUA) copies them to <see cref="Durable"/>, the bytes a crash would keep.</summary>
public sealed class GatedBlockDevice : IBlockDevice
{
    private readonly MemoryBlockDevice _inner;
    private readonly ConcurrentDictionary<long, TaskCompletionSource> _gates = new();
    private int _running;
    private int _maxRunning;

    public GatedBlockDevice(long length)
    {
        _inner = new MemoryBlockDevice(length);
        Durable = new MemoryBlockDevice(length);
    }

    public long Length => _inner.Length;

    public int SectorSize => _inner.SectorSize;

    public bool IsReadOnly => false;

    /// <summary>What survives a crash: the content as of the last flush.</summary>
    public MemoryBlockDevice Durable { get; }

    public int MaxConcurrentCalls => Volatile.Read(ref _maxRunning);

    public int Flushes { get; private set; }

    public bool Disposed { get; private set; }

    /// <summary>Makes calls at <paramref name="offset"/> wait; returns the gate to open.</summary>
    public TaskCompletionSource Gate(long offset) =>
        _gates.GetOrAdd(offset, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct = default)
    {
        await EnterAsync(offset);
        try
        {
            await _inner.ReadAsync(offset, buffer, ct);
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, bool forceUnitAccess = false, CancellationToken ct = default)
    {
        await EnterAsync(offset);
        try
        {
            await _inner.WriteAsync(offset, data, false, ct);
            if (forceUnitAccess)
            {
                await Durable.WriteAsync(offset, data, false, ct);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    public async ValueTask FlushAsync(CancellationToken ct = default)
    {
        Flushes++;
        byte[] all = new byte[Length];
        await _inner.ReadAsync(0, all, ct);
        await Durable.WriteAsync(0, all, false, ct);
    }

    public ValueTask TrimAsync(long offset, long length, CancellationToken ct = default) => _inner.TrimAsync(offset, length, ct);

    public ValueTask WriteZeroesAsync(long offset, long length, CancellationToken ct = default) => _inner.WriteZeroesAsync(offset, length, ct);

    public IAsyncEnumerable<Extent> MapAsync(long offset, long length, CancellationToken ct = default) => _inner.MapAsync(offset, length, ct);

    public async ValueTask DisposeAsync()
    {
        await FlushAsync();
        Disposed = true;
        await _inner.DisposeAsync();
    }

    private async Task EnterAsync(long offset)
    {
        int running = Interlocked.Increment(ref _running);
        int max;
        while (running > (max = Volatile.Read(ref _maxRunning)) && Interlocked.CompareExchange(ref _maxRunning, running, max) != max)
        {
        }

        if (_gates.TryGetValue(offset, out TaskCompletionSource? gate))
        {
            await gate.Task;
        }
    }
}
