using System.Runtime.CompilerServices;
using BlockDriver.Abstractions;

namespace BlockDriver.Testing;

/// <summary>
/// An <see cref="IBlockDevice"/> decorator that injects the failures a real disk shows: an <see cref="IOException"/>
/// after <see cref="FailAfterWrites"/> writes or on flush number <see cref="FailOnFlush"/>, and, with a volatile
/// cache, lost unflushed writes (<see cref="PowerLoss"/>) and a flush torn part-way (<see cref="TearOnFlush"/>).
/// </summary>
/// <remarks>
/// <para>Without a cache every request passes straight to <see cref="Inner"/>. With <c>volatileCache</c>, writes,
/// trims and write-zeroes are held in memory (reads see them) until a flush, a FUA write or disposal applies them to
/// <see cref="Inner"/> in order; <see cref="Inner"/> then plays the disk surface, i.e. what survives a crash.</para>
/// <para>"Writes" counted by <see cref="WriteCount"/> are writes, trims and write-zeroes that passed the argument and
/// read-only checks. A failed request does not reach the inner device or the cache. After a torn flush or
/// <see cref="PowerLoss"/> the device is crashed: every request throws <see cref="IOException"/>.</para>
/// <para>Thread-safe: pass-through requests run concurrently; with a cache they are serialised.</para>
/// </remarks>
public sealed class FaultyBlockDevice : IBlockDevice
{
    private readonly bool _ownsInner;
    private readonly bool _volatileCache;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<PendingWrite> _pending = [];
    private int? _tearOnFlush;
    private int _writeCount;
    private int _flushCount;
    private volatile bool _crashed;
    private bool _disposed;

    /// <summary>Wraps <paramref name="inner"/>.</summary>
    /// <param name="inner">The device requests are passed to.</param>
    /// <param name="volatileCache">Hold writes in memory until a flush, as a disk's write cache does.</param>
    /// <param name="ownsInner">Dispose <paramref name="inner"/> with this device.</param>
    public FaultyBlockDevice(IBlockDevice inner, bool volatileCache = false, bool ownsInner = true)
    {
        ArgumentNullException.ThrowIfNull(inner);
        Inner = inner;
        _volatileCache = volatileCache;
        _ownsInner = ownsInner;
    }

    /// <summary>The wrapped device; with a volatile cache, what a crash would leave.</summary>
    public IBlockDevice Inner { get; }

    /// <inheritdoc/>
    public long Length => Inner.Length;

    /// <inheritdoc/>
    public int SectorSize => Inner.SectorSize;

    /// <inheritdoc/>
    public bool IsReadOnly => Inner.IsReadOnly;

    /// <summary>When set, writes number 1 to N succeed and every later one throws <see cref="IOException"/>.</summary>
    public int? FailAfterWrites { get; set; }

    /// <summary>When set, flush number N (1-based) throws <see cref="IOException"/> and applies nothing; later flushes work.</summary>
    public int? FailOnFlush { get; set; }

    /// <summary>When set, flush number N (1-based) applies a random subset of the cached sectors to <see cref="Inner"/>
    /// (chosen by <see cref="TearSeed"/>), throws <see cref="IOException"/> and leaves the device crashed.
    /// Requires a volatile cache.</summary>
    /// <exception cref="InvalidOperationException">Set on a device without a volatile cache.</exception>
    public int? TearOnFlush
    {
        get => _tearOnFlush;
        set
        {
            if (value is not null && !_volatileCache)
            {
                throw new InvalidOperationException("A flush can only tear with a volatile cache to tear.");
            }

            _tearOnFlush = value;
        }
    }

    /// <summary>Seed choosing which sectors a torn flush applies.</summary>
    public int TearSeed { get; set; }

    /// <summary>Writes, trims and write-zeroes attempted so far, including failed ones.</summary>
    public int WriteCount => Volatile.Read(ref _writeCount);

    /// <summary>Flushes attempted so far, including failed ones.</summary>
    public int FlushCount => Volatile.Read(ref _flushCount);

    /// <summary>Requests held in the volatile cache.</summary>
    public int PendingWriteCount
    {
        get
        {
            _gate.Wait();
            try
            {
                return _pending.Count;
            }
            finally
            {
                _gate.Release();
            }
        }
    }

    /// <summary>True after a torn flush or <see cref="PowerLoss"/>.</summary>
    public bool IsCrashed => _crashed;

    /// <summary>Drops the volatile cache, as a power cut does, and leaves the device crashed.</summary>
    public void PowerLoss()
    {
        _gate.Wait();
        try
        {
            _pending.Clear();
            _crashed = true;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc/>
    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, buffer.Length);
        ThrowIfCrashed();
        if (!_volatileCache)
        {
            await Inner.ReadAsync(offset, buffer, ct);
            return;
        }

        await _gate.WaitAsync(ct);
        try
        {
            ThrowIfCrashed();
            await Inner.ReadAsync(offset, buffer, ct);
            foreach (PendingWrite write in _pending)
            {
                long start = Math.Max(offset, write.Offset);
                long end = Math.Min(offset + buffer.Length, write.Offset + write.Length);
                if (start >= end)
                {
                    continue;
                }

                Span<byte> target = buffer.Span.Slice((int)(start - offset), (int)(end - start));
                if (write.Data is null)
                {
                    target.Clear();
                }
                else
                {
                    write.Data.AsSpan((int)(start - write.Offset), target.Length).CopyTo(target);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc/>
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, bool forceUnitAccess = false, CancellationToken ct = default)
    {
        BeginWrite(offset, data.Length, forceUnitAccess ? "FUA write" : "write");
        if (!_volatileCache)
        {
            await Inner.WriteAsync(offset, data, forceUnitAccess, ct);
            return;
        }

        await _gate.WaitAsync(ct);
        try
        {
            ThrowIfCrashed();
            if (forceUnitAccess)
            {
                // The FUA write must be durable, and must not be overwritten later by an older cached write of the
                // same sectors: drain the cache first (earlier writes may always become durable early).
                await DrainAsync(ct);
                await Inner.WriteAsync(offset, data, forceUnitAccess: true, ct);
            }
            else
            {
                _pending.Add(new PendingWrite(offset, data.Length, data.ToArray(), Trim: false));
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc/>
    public ValueTask TrimAsync(long offset, long length, CancellationToken ct = default) =>
        ZeroOrTrimAsync(offset, length, trim: true, ct);

    /// <inheritdoc/>
    public ValueTask WriteZeroesAsync(long offset, long length, CancellationToken ct = default) =>
        ZeroOrTrimAsync(offset, length, trim: false, ct);

    /// <inheritdoc/>
    public async ValueTask FlushAsync(CancellationToken ct = default)
    {
        ThrowIfCrashed();
        int number = Interlocked.Increment(ref _flushCount);
        if (number == FailOnFlush)
        {
            throw new IOException($"Injected failure of flush #{number}.");
        }

        if (!_volatileCache)
        {
            await Inner.FlushAsync(ct);
            return;
        }

        await _gate.WaitAsync(ct);
        try
        {
            ThrowIfCrashed();
            if (number == _tearOnFlush)
            {
                await TearAsync(ct);
                _crashed = true;
                throw new IOException($"Injected torn flush #{number}: the device crashed part-way.");
            }

            await DrainAsync(ct);
            await Inner.FlushAsync(ct);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<Extent> MapAsync(long offset, long length, [EnumeratorCancellation] CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, length);
        ThrowIfCrashed();
        if (!_volatileCache)
        {
            await foreach (Extent extent in Inner.MapAsync(offset, length, ct))
            {
                yield return extent;
            }

            yield break;
        }

        List<Extent> merged;
        await _gate.WaitAsync(ct);
        try
        {
            ThrowIfCrashed();
            merged = OverlayPending(await Inner.MapToListAsync(offset, length, ct), offset, length);
        }
        finally
        {
            _gate.Release();
        }

        foreach (Extent extent in merged)
        {
            yield return extent;
        }
    }

    /// <summary>Applies the cache (unless crashed), then disposes <see cref="Inner"/> if owned.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            if (_volatileCache && !_crashed && !Inner.IsReadOnly)
            {
                await _gate.WaitAsync();
                try
                {
                    await DrainAsync(CancellationToken.None);
                    await Inner.FlushAsync();
                }
                finally
                {
                    _gate.Release();
                }
            }
        }
        finally
        {
            if (_ownsInner)
            {
                await Inner.DisposeAsync();
            }

            _gate.Dispose();
        }
    }

    private async ValueTask ZeroOrTrimAsync(long offset, long length, bool trim, CancellationToken ct)
    {
        BeginWrite(offset, length, trim ? "trim" : "write-zeroes");
        if (!_volatileCache)
        {
            await (trim ? Inner.TrimAsync(offset, length, ct) : Inner.WriteZeroesAsync(offset, length, ct));
            return;
        }

        await _gate.WaitAsync(ct);
        try
        {
            ThrowIfCrashed();
            _pending.Add(new PendingWrite(offset, length, Data: null, trim));
        }
        finally
        {
            _gate.Release();
        }
    }

    // Argument and read-only checks, then the write budget; throws before anything reaches the inner device.
    private void BeginWrite(long offset, long length, string what)
    {
        BlockDeviceGuard.CheckRange(this, offset, length);
        BlockDeviceGuard.CheckWritable(this, nameof(FaultyBlockDevice));
        ThrowIfCrashed();
        int number = Interlocked.Increment(ref _writeCount);
        if (number > FailAfterWrites)
        {
            throw new IOException($"Injected failure of {what} #{number} (only {FailAfterWrites} succeed).");
        }
    }

    // Caller holds _gate.
    private async ValueTask DrainAsync(CancellationToken ct)
    {
        foreach (PendingWrite write in _pending)
        {
            await ApplyAsync(write, write.Offset, write.Length, ct);
        }

        _pending.Clear();
    }

    // Caller holds _gate. Each cached sector reaches the inner device with probability 1/2, in request order.
    private async ValueTask TearAsync(CancellationToken ct)
    {
        var rng = new Random(TearSeed);
        foreach (PendingWrite write in _pending)
        {
            long runStart = -1;
            for (long at = write.Offset; at <= write.Offset + write.Length; at += SectorSize)
            {
                bool keep = at < write.Offset + write.Length && rng.Next(2) == 0;
                if (keep && runStart < 0)
                {
                    runStart = at;
                }
                else if (!keep && runStart >= 0)
                {
                    await ApplyAsync(write, runStart, at - runStart, ct);
                    runStart = -1;
                }
            }
        }

        _pending.Clear();
    }

    // Applies [offset, +length) of a cached request, which it must lie within, to the inner device.
    private async ValueTask ApplyAsync(PendingWrite write, long offset, long length, CancellationToken ct)
    {
        if (write.Data is not null)
        {
            await Inner.WriteAsync(offset, write.Data.AsMemory((int)(offset - write.Offset), (int)length), forceUnitAccess: false, ct);
        }
        else if (write.Trim)
        {
            await Inner.TrimAsync(offset, length, ct);
        }
        else
        {
            await Inner.WriteZeroesAsync(offset, length, ct);
        }
    }

    // Cached requests make their ranges Data (the conservative answer); elsewhere the inner map stands.
    private List<Extent> OverlayPending(IReadOnlyList<Extent> inner, long offset, long length)
    {
        long end = offset + length;
        var cuts = new SortedSet<long> { offset, end };
        foreach (Extent extent in inner)
        {
            cuts.Add(Math.Clamp(extent.Offset, offset, end));
            cuts.Add(Math.Clamp(extent.End, offset, end));
        }

        foreach (PendingWrite write in _pending)
        {
            cuts.Add(Math.Clamp(write.Offset, offset, end));
            cuts.Add(Math.Clamp(write.Offset + write.Length, offset, end));
        }

        var merged = new List<Extent>();
        long previous = offset;
        foreach (long cut in cuts.Where(c => c > offset))
        {
            bool cached = _pending.Exists(w => w.Offset < cut && previous < w.Offset + w.Length);
            ExtentKind kind = cached ? ExtentKind.Data : inner.First(e => e.Offset <= previous && previous < e.End).Kind;
            if (merged.Count > 0 && merged[^1].Kind == kind)
            {
                merged[^1] = merged[^1] with { Length = merged[^1].Length + (cut - previous) };
            }
            else
            {
                merged.Add(new Extent(previous, cut - previous, kind));
            }

            previous = cut;
        }

        return merged;
    }

    private void ThrowIfCrashed()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_crashed)
        {
            throw new IOException("The device crashed (torn flush or power loss); it accepts no more requests.");
        }
    }

    // Data is null for write-zeroes and trims.
    private readonly record struct PendingWrite(long Offset, long Length, byte[]? Data, bool Trim);
}
