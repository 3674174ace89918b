using System.Runtime.CompilerServices;
using BlockDriver.Interop;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Abstractions;

/// <summary>A raw image file as an <see cref="IBlockDevice"/>: byte <c>n</c> of the device is byte <c>n</c> of the
/// file. Trim and write-zeroes punch holes, and the map comes from SEEK_DATA/SEEK_HOLE, so raw images stay sparse.
/// Thread-safe (positional I/O only). Owns its file handle.</summary>
public sealed class FileBlockDevice : IBlockDevice
{
    // Requests up to this long use synchronous pread/pwrite. On Linux RandomAccess.ReadAsync/WriteAsync queue every
    // call to the thread pool (there is no asynchronous file I/O, whatever FileOptions say), which costs more than
    // copying 64 KiB from the page cache; longer requests keep the caller's thread free.
    private const int SyncIoLimit = 64 * 1024;

    private readonly SafeFileHandle _handle;

    private FileBlockDevice(SafeFileHandle handle, string path, long length, int sectorSize, bool isReadOnly)
    {
        _handle = handle;
        Path = path;
        Length = length;
        SectorSize = sectorSize;
        IsReadOnly = isReadOnly;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public long Length { get; }

    /// <inheritdoc/>
    public int SectorSize { get; }

    /// <inheritdoc/>
    public bool IsReadOnly { get; }

    /// <summary>Opens an existing raw image. Its length must be a multiple of <paramref name="sectorSize"/>.</summary>
    /// <exception cref="BlockDriverException">NotFound, or InvalidArgument when the length is not sector-aligned.</exception>
    public static FileBlockDevice Open(string path, bool readOnly = true, int sectorSize = 512)
    {
        CheckSectorSize(sectorSize);
        if (!File.Exists(path))
        {
            throw new BlockDriverException(ErrorKind.NotFound, $"{path}: no such file.");
        }

        SafeFileHandle handle = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite,
            readOnly ? FileShare.ReadWrite : FileShare.Read);
        long length = RandomAccess.GetLength(handle);
        if (length % sectorSize != 0)
        {
            handle.Dispose();
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"{path}: length {length} is not a multiple of the {sectorSize}-byte sector size.");
        }

        return new FileBlockDevice(handle, path, length, sectorSize, readOnly);
    }

    /// <summary>Creates (or truncates) a sparse raw image of <paramref name="length"/> bytes, all holes.</summary>
    public static FileBlockDevice Create(string path, long length, int sectorSize = 512)
    {
        CheckSectorSize(sectorSize);
        if (length <= 0 || length % sectorSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, $"Length must be a positive multiple of {sectorSize}.");
        }

        SafeFileHandle handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.Read);
        RandomAccess.SetLength(handle, length);
        return new FileBlockDevice(handle, path, length, sectorSize, isReadOnly: false);
    }

    /// <inheritdoc/>
    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, buffer.Length);
        int done = 0;
        while (done < buffer.Length)
        {
            ct.ThrowIfCancellationRequested();
            int n = buffer.Length - done <= SyncIoLimit
                ? RandomAccess.Read(_handle, buffer.Span[done..], offset + done)
                : await RandomAccess.ReadAsync(_handle, buffer[done..], offset + done, ct).ConfigureAwait(false);
            if (n == 0)
            {
                // The file shrank under us; the device's length is fixed at open, so the rest reads as zeroes.
                buffer.Span[done..].Clear();
                return;
            }

            done += n;
        }
    }

    /// <inheritdoc/>
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, bool forceUnitAccess = false, CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, data.Length);
        BlockDeviceGuard.CheckWritable(this, Path);
        if (data.Length <= SyncIoLimit)
        {
            ct.ThrowIfCancellationRequested();
            RandomAccess.Write(_handle, data.Span, offset);
        }
        else
        {
            await RandomAccess.WriteAsync(_handle, data, offset, ct).ConfigureAwait(false);
        }

        if (forceUnitAccess)
        {
            RandomAccess.FlushToDisk(_handle);
        }
    }

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken ct = default)
    {
        if (!IsReadOnly)
        {
            RandomAccess.FlushToDisk(_handle);
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask TrimAsync(long offset, long length, CancellationToken ct = default) => WriteZeroesAsync(offset, length, ct);

    /// <inheritdoc/>
    public ValueTask WriteZeroesAsync(long offset, long length, CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, length);
        BlockDeviceGuard.CheckWritable(this, Path);
        SparseFile.PunchHole(_handle, offset, length);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<Extent> MapAsync(long offset, long length, [EnumeratorCancellation] CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, length);
        long end = offset + length;
        long position = offset;
        while (position < end)
        {
            ct.ThrowIfCancellationRequested();
            long data = SparseFile.NextData(_handle, position);
            if (data < 0 || data >= end)
            {
                yield return new Extent(position, end - position, ExtentKind.Hole);
                break;
            }

            if (data > position)
            {
                yield return new Extent(position, data - position, ExtentKind.Hole);
            }

            long hole = SparseFile.NextHole(_handle, data);
            long dataEnd = hole < 0 ? end : Math.Min(hole, end);
            yield return new Extent(data, dataEnd - data, ExtentKind.Data);
            position = dataEnd;
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        if (_handle.IsClosed)
        {
            return ValueTask.CompletedTask;
        }

        try
        {
            // The interface promises that disposing a writable device makes its writes durable.
            if (!IsReadOnly)
            {
                RandomAccess.FlushToDisk(_handle);
            }
        }
        finally
        {
            _handle.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    private static void CheckSectorSize(int sectorSize)
    {
        if (sectorSize < 512 || sectorSize > 64 * 1024 || (sectorSize & (sectorSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(sectorSize), sectorSize, "Sector size must be a power of two from 512 bytes to 64 KiB.");
        }
    }
}
