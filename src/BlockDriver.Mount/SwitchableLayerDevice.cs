using System.Runtime.CompilerServices;
using BlockDriver.Abstractions;
using BlockDriver.Core;

namespace BlockDriver.Mount;

/// <summary>The device a FUSE file serves for a layer attached with <see cref="LayerMounter.AttachDeviceAsync"/>: the
/// open <see cref="LayerDevice"/>, which <see cref="PauseAsync"/> and <see cref="Resume"/> can replace under a loop
/// device that stays bound (and under the file system mounted on it), as
/// <see cref="LayerMounter.SnapshotDeviceAsync"/> does when the layer's data becomes a sealed snapshot and the layer
/// goes on as its empty child.</summary>
/// <remarks>Every request runs on the device current when it started. While paused, new requests wait (a frozen file
/// system still reads) and <see cref="PauseAsync"/> returns once the ones in flight are done. Length, sector size and
/// read-only-ness are the first device's: a replacement must be the same layer id, so it has them too.
/// Thread-safe.</remarks>
internal sealed class SwitchableLayerDevice : IBlockDevice
{
    private readonly Lock _lock = new();
    private readonly long _length;
    private readonly int _sectorSize;
    private readonly bool _readOnly;
    private LayerDevice? _current;
    private int _inFlight;
    private TaskCompletionSource? _resumed;
    private TaskCompletionSource? _drained;

    public SwitchableLayerDevice(LayerDevice device)
    {
        _current = device;
        _length = device.Length;
        _sectorSize = device.SectorSize;
        _readOnly = device.IsReadOnly;
    }

    /// <inheritdoc/>
    public long Length => _length;

    /// <inheritdoc/>
    public int SectorSize => _sectorSize;

    /// <inheritdoc/>
    public bool IsReadOnly => _readOnly;

    /// <summary>Stops new requests and waits for those in flight; returns the current device (null after a
    /// <see cref="Resume"/> with none), which the caller may now close. Until <see cref="Resume"/>, requests wait.</summary>
    /// <exception cref="InvalidOperationException">Already paused.</exception>
    public Task<LayerDevice?> PauseAsync()
    {
        Task drained;
        lock (_lock)
        {
            if (_resumed is not null)
            {
                throw new InvalidOperationException("The device is paused already.");
            }

            _resumed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (_inFlight == 0)
            {
                return Task.FromResult(_current);
            }

            _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            drained = _drained.Task;
        }

        return WaitAsync(drained);

        async Task<LayerDevice?> WaitAsync(Task until)
        {
            await until.ConfigureAwait(false);
            return _current;
        }
    }

    /// <summary>Serves <paramref name="device"/> from now on and lets the waiting requests go. With null, every request
    /// fails with Unavailable (a replacement could not be opened).</summary>
    public void Resume(LayerDevice? device)
    {
        TaskCompletionSource resumed;
        lock (_lock)
        {
            resumed = _resumed ?? throw new InvalidOperationException("The device is not paused.");
            _current = device;
            _resumed = null;
            _drained = null;
        }

        resumed.TrySetResult();
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct = default)
    {
        LayerDevice device = await EnterAsync(ct).ConfigureAwait(false);
        try
        {
            await device.ReadAsync(offset, buffer, ct).ConfigureAwait(false);
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, bool forceUnitAccess = false, CancellationToken ct = default)
    {
        LayerDevice device = await EnterAsync(ct).ConfigureAwait(false);
        try
        {
            await device.WriteAsync(offset, data, forceUnitAccess, ct).ConfigureAwait(false);
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask FlushAsync(CancellationToken ct = default)
    {
        LayerDevice device = await EnterAsync(ct).ConfigureAwait(false);
        try
        {
            await device.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask TrimAsync(long offset, long length, CancellationToken ct = default)
    {
        LayerDevice device = await EnterAsync(ct).ConfigureAwait(false);
        try
        {
            await device.TrimAsync(offset, length, ct).ConfigureAwait(false);
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WriteZeroesAsync(long offset, long length, CancellationToken ct = default)
    {
        LayerDevice device = await EnterAsync(ct).ConfigureAwait(false);
        try
        {
            await device.WriteZeroesAsync(offset, length, ct).ConfigureAwait(false);
        }
        finally
        {
            Exit();
        }
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<Extent> MapAsync(long offset, long length, [EnumeratorCancellation] CancellationToken ct = default)
    {
        LayerDevice device = await EnterAsync(ct).ConfigureAwait(false);
        try
        {
            await foreach (Extent extent in device.MapAsync(offset, length, ct).ConfigureAwait(false))
            {
                yield return extent;
            }
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Disposes the current device (which flushes it).</summary>
    public async ValueTask DisposeAsync()
    {
        LayerDevice? device;
        lock (_lock)
        {
            device = _current;
            _current = null;
        }

        if (device is not null)
        {
            await device.DisposeAsync().ConfigureAwait(false);
        }
    }

    private ValueTask<LayerDevice> EnterAsync(CancellationToken ct)
    {
        lock (_lock)
        {
            if (_resumed is null)
            {
                return ValueTask.FromResult(Take());
            }
        }

        return EnterSlowAsync(ct);
    }

    private async ValueTask<LayerDevice> EnterSlowAsync(CancellationToken ct)
    {
        while (true)
        {
            Task resumed;
            lock (_lock)
            {
                if (_resumed is null)
                {
                    return Take();
                }

                resumed = _resumed.Task;
            }

            await resumed.WaitAsync(ct).ConfigureAwait(false);
        }
    }

    // Under _lock.
    private LayerDevice Take()
    {
        LayerDevice device = _current ?? throw new BlockDriverException(ErrorKind.Unavailable, "the layer behind this device could not be reopened after a snapshot.");
        _inFlight++;
        return device;
    }

    private void Exit()
    {
        lock (_lock)
        {
            if (--_inFlight == 0)
            {
                _drained?.TrySetResult();
            }
        }
    }
}
