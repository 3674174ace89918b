using BlockDriver.Abstractions;

namespace BlockDriver.Nbd;

/// <summary>An export as the server serves it: the descriptor plus the one device instance shared by every
/// connection (opened on first use). Thread-safe.</summary>
internal sealed class ExportHandle : IAsyncDisposable
{
    private readonly SemaphoreSlim _openLock = new(1, 1);
    private IBlockDevice? _device;
    private bool _disposed;

    public ExportHandle(NbdExport export)
    {
        Export = export;
    }

    public NbdExport Export { get; }

    public string Name => Export.Name;

    /// <summary>The shared device, opening it on the first call.</summary>
    /// <exception cref="ObjectDisposedException">The server is stopping.</exception>
    public async ValueTask<IBlockDevice> GetDeviceAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _device) is { } opened)
        {
            return opened;
        }

        await _openLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_device is null)
            {
                IBlockDevice device = await Export.Open(ct).ConfigureAwait(false);
                CheckGeometry(device);
                Volatile.Write(ref _device, device);
            }

            return _device;
        }
        finally
        {
            _openLock.Release();
        }
    }

    /// <summary>The transmission flags for a connection to this export.</summary>
    /// <remarks>CAN_MULTI_CONN is always true here: every connection uses the same device instance, so a FLUSH or
    /// FUA on any connection covers every write any connection completed before it.</remarks>
    public NbdTransmissionFlags FlagsFor(IBlockDevice device, bool structuredReplies)
    {
        NbdTransmissionFlags flags = NbdTransmissionFlags.HasFlags | NbdTransmissionFlags.SendFlush | NbdTransmissionFlags.SendFua
            | NbdTransmissionFlags.SendCache | NbdTransmissionFlags.CanMultiConn;
        if (IsReadOnly(device))
        {
            flags |= NbdTransmissionFlags.ReadOnly;
        }
        else
        {
            flags |= NbdTransmissionFlags.SendTrim | NbdTransmissionFlags.SendWriteZeroes | NbdTransmissionFlags.SendFastZero;
        }

        if (structuredReplies)
        {
            flags |= NbdTransmissionFlags.SendDontFragment;
        }

        return flags;
    }

    /// <summary>True when the export refuses modifications.</summary>
    public bool IsReadOnly(IBlockDevice device) => Export.ReadOnly || device.IsReadOnly;

    /// <summary>Flushes and disposes the device if the server owns it. Called once, after every connection ended.</summary>
    public async ValueTask DisposeAsync()
    {
        await _openLock.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_device is { } device && Export.OwnsDevice)
            {
                // IBlockDevice.DisposeAsync flushes writable devices itself.
                await device.DisposeAsync().ConfigureAwait(false);
            }

            _device = null;
        }
        finally
        {
            _openLock.Release();
        }
    }

    // NBD_INFO_BLOCK_SIZE requires a power-of-two minimum block of at most 64 KiB, and the size should be a
    // multiple of it; refuse a device that would make us advertise nonsense.
    private void CheckGeometry(IBlockDevice device)
    {
        int sector = device.SectorSize;
        if (sector < 1 || sector > 65536 || (sector & (sector - 1)) != 0 || device.Length < 0 || device.Length % sector != 0)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"Export '{Name}': sector size {sector} and length {device.Length} cannot be described to NBD clients.");
        }
    }
}
