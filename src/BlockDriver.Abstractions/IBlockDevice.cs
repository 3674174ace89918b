namespace BlockDriver.Abstractions;

/// <summary>
/// A random-access block device: the one abstraction every BlockDriver component produces or consumes.
/// </summary>
/// <remarks>
/// <para>Units: every <c>offset</c> and <c>length</c> is in bytes. Every request must be aligned to
/// <see cref="SectorSize"/> (offset and length both multiples of it) and lie inside [0, <see cref="Length"/>);
/// anything else throws <see cref="ArgumentOutOfRangeException"/> before the device changes.</para>
/// <para>Durability: a completed write is visible to later reads but is durable only after a completed
/// <see cref="FlushAsync"/>, or when written with <c>forceUnitAccess</c>.</para>
/// <para>Thread safety: implementations accept concurrent requests on disjoint ranges. Overlapping concurrent
/// writes leave each sector holding one of the written values.</para>
/// <para>The device owns its backing resources and releases them in <see cref="IAsyncDisposable.DisposeAsync"/>,
/// which flushes writable devices first.</para>
/// </remarks>
public interface IBlockDevice : IAsyncDisposable
{
    /// <summary>Size in bytes; a multiple of <see cref="SectorSize"/>.</summary>
    long Length { get; }

    /// <summary>The I/O alignment the device requires, in bytes (512 or 4096 for VHDX).</summary>
    int SectorSize { get; }

    /// <summary>True when writes, trims and write-zeroes are refused with <see cref="ErrorKind.ReadOnly"/>.</summary>
    bool IsReadOnly { get; }

    /// <summary>Fills <paramref name="buffer"/> with the device content at <paramref name="offset"/>.</summary>
    ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct = default);

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>; with <paramref name="forceUnitAccess"/>
    /// the data is durable when the call completes.</summary>
    ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, bool forceUnitAccess = false, CancellationToken ct = default);

    /// <summary>Makes every completed write durable.</summary>
    ValueTask FlushAsync(CancellationToken ct = default);

    /// <summary>Hints that the range is no longer needed. The range may afterwards read back as anything
    /// (old data or zeroes); implementations release backing storage where they can.</summary>
    ValueTask TrimAsync(long offset, long length, CancellationToken ct = default);

    /// <summary>Makes the range read back as zeroes, without writing zero bytes where the format can say
    /// "zero" instead.</summary>
    ValueTask WriteZeroesAsync(long offset, long length, CancellationToken ct = default);

    /// <summary>Describes the range as consecutive, non-overlapping extents in ascending order that together
    /// cover exactly [offset, offset + length).</summary>
    IAsyncEnumerable<Extent> MapAsync(long offset, long length, CancellationToken ct = default);
}
