using System.Collections.Concurrent;
using BlockDriver.Abstractions;

namespace BlockDriver.Fuse.Tests;

/// <summary>Passes every request to an inner device and records what reached it, so tests can see what the kernel
/// turned a system call into.</summary>
internal sealed class RecordingBlockDevice(IBlockDevice inner) : IBlockDevice
{
    private int _flushes;
    private int _largestWrite;

    public IBlockDevice Inner { get; } = inner;

    public ConcurrentQueue<(string Operation, long Offset, long Length)> Calls { get; } = new();

    public int Flushes => Volatile.Read(ref _flushes);

    public int LargestWrite => Volatile.Read(ref _largestWrite);

    public long Length => Inner.Length;

    public int SectorSize => Inner.SectorSize;

    public bool IsReadOnly => Inner.IsReadOnly;

    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct = default)
    {
        Calls.Enqueue(("Read", offset, buffer.Length));
        return Inner.ReadAsync(offset, buffer, ct);
    }

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, bool forceUnitAccess = false, CancellationToken ct = default)
    {
        Calls.Enqueue(("Write", offset, data.Length));
        int largest;
        do
        {
            largest = Volatile.Read(ref _largestWrite);
        }
        while (data.Length > largest && Interlocked.CompareExchange(ref _largestWrite, data.Length, largest) != largest);

        return Inner.WriteAsync(offset, data, forceUnitAccess, ct);
    }

    public ValueTask FlushAsync(CancellationToken ct = default)
    {
        Interlocked.Increment(ref _flushes);
        return Inner.FlushAsync(ct);
    }

    public ValueTask TrimAsync(long offset, long length, CancellationToken ct = default)
    {
        Calls.Enqueue(("Trim", offset, length));
        return Inner.TrimAsync(offset, length, ct);
    }

    public ValueTask WriteZeroesAsync(long offset, long length, CancellationToken ct = default)
    {
        Calls.Enqueue(("WriteZeroes", offset, length));
        return Inner.WriteZeroesAsync(offset, length, ct);
    }

    public IAsyncEnumerable<Extent> MapAsync(long offset, long length, CancellationToken ct = default) => Inner.MapAsync(offset, length, ct);

    public ValueTask DisposeAsync() => Inner.DisposeAsync();
}
