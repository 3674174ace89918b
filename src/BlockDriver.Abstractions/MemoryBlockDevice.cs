using System.Runtime.CompilerServices;

namespace BlockDriver.Abstractions;

/// <summary>A sparse in-memory <see cref="IBlockDevice"/>: storage is allocated in 64 KiB chunks on first write,
/// trimmed chunks are released. Used by tests and as the model other devices are compared against.
/// Thread-safe: every operation takes one lock, so it is correct rather than fast.</summary>
public sealed class MemoryBlockDevice : IBlockDevice
{
    private const int ChunkSize = 64 * 1024;
    private readonly Dictionary<long, byte[]> _chunks = new();
    private readonly Lock _lock = new();
    private bool _disposed;

    /// <summary>Creates a zero-filled device of <paramref name="length"/> bytes.</summary>
    /// <param name="length">Size in bytes; a positive multiple of <paramref name="sectorSize"/>.</param>
    /// <param name="sectorSize">512 or 4096 (any power of two up to 64 KiB is accepted).</param>
    /// <param name="isReadOnly">Refuse modifications.</param>
    public MemoryBlockDevice(long length, int sectorSize = 512, bool isReadOnly = false)
    {
        if (sectorSize < 1 || sectorSize > ChunkSize || (sectorSize & (sectorSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(sectorSize), sectorSize, "Sector size must be a power of two up to 64 KiB.");
        }

        if (length <= 0 || length % sectorSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, $"Length must be a positive multiple of {sectorSize}.");
        }

        Length = length;
        SectorSize = sectorSize;
        IsReadOnly = isReadOnly;
    }

    /// <inheritdoc/>
    public long Length { get; }

    /// <inheritdoc/>
    public int SectorSize { get; }

    /// <inheritdoc/>
    public bool IsReadOnly { get; }

    /// <summary>Bytes of backing memory in use (allocated chunks).</summary>
    public long AllocatedBytes
    {
        get
        {
            lock (_lock)
            {
                return (long)_chunks.Count * ChunkSize;
            }
        }
    }

    /// <inheritdoc/>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, buffer.Length);
        lock (_lock)
        {
            ThrowIfDisposed();
            Span<byte> span = buffer.Span;
            foreach ((long chunk, int inChunk, int done, int count) in Chunks(offset, buffer.Length))
            {
                Span<byte> target = span.Slice(done, count);
                if (_chunks.TryGetValue(chunk, out byte[]? data))
                {
                    data.AsSpan(inChunk, count).CopyTo(target);
                }
                else
                {
                    target.Clear();
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, bool forceUnitAccess = false, CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, data.Length);
        BlockDeviceGuard.CheckWritable(this, nameof(MemoryBlockDevice));
        lock (_lock)
        {
            ThrowIfDisposed();
            ReadOnlySpan<byte> span = data.Span;
            foreach ((long chunk, int inChunk, int done, int count) in Chunks(offset, data.Length))
            {
                if (!_chunks.TryGetValue(chunk, out byte[]? bytes))
                {
                    bytes = new byte[ChunkSize];
                    _chunks.Add(chunk, bytes);
                }

                span.Slice(done, count).CopyTo(bytes.AsSpan(inChunk, count));
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken ct = default)
    {
        lock (_lock)
        {
            ThrowIfDisposed();
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask TrimAsync(long offset, long length, CancellationToken ct = default) => WriteZeroesAsync(offset, length, ct);

    /// <inheritdoc/>
    public ValueTask WriteZeroesAsync(long offset, long length, CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, length);
        BlockDeviceGuard.CheckWritable(this, nameof(MemoryBlockDevice));
        lock (_lock)
        {
            ThrowIfDisposed();
            foreach ((long chunk, int inChunk, _, int count) in Chunks(offset, length))
            {
                if (count == ChunkSize)
                {
                    _chunks.Remove(chunk);
                }
                else if (_chunks.TryGetValue(chunk, out byte[]? bytes))
                {
                    bytes.AsSpan(inChunk, count).Clear();
                }
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<Extent> MapAsync(long offset, long length, [EnumeratorCancellation] CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, length);
        var extents = new List<Extent>();
        lock (_lock)
        {
            ThrowIfDisposed();
            long start = offset;
            foreach ((long chunk, _, _, int count) in Chunks(offset, length))
            {
                ExtentKind kind = _chunks.ContainsKey(chunk) ? ExtentKind.Data : ExtentKind.Hole;
                if (extents.Count > 0 && extents[^1].Kind == kind)
                {
                    extents[^1] = extents[^1] with { Length = extents[^1].Length + count };
                }
                else
                {
                    extents.Add(new Extent(start, count, kind));
                }

                start += count;
            }
        }

        foreach (Extent extent in extents)
        {
            ct.ThrowIfCancellationRequested();
            yield return extent;
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            _disposed = true;
            _chunks.Clear();
        }

        return ValueTask.CompletedTask;
    }

    // Splits [offset, offset + length) at chunk boundaries: (chunk index, offset in chunk, bytes before, count).
    // "done" is an int: a single request is at most a Memory<byte>, except trims, which ignore it.
    private static IEnumerable<(long Chunk, int InChunk, int Done, int Count)> Chunks(long offset, long length)
    {
        long done = 0;
        while (done < length)
        {
            long position = offset + done;
            int inChunk = (int)(position % ChunkSize);
            int count = (int)Math.Min(ChunkSize - inChunk, length - done);
            yield return (position / ChunkSize, inChunk, (int)Math.Min(done, int.MaxValue), count);
            done += count;
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
