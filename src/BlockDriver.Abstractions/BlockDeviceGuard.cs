using System.Diagnostics.CodeAnalysis;

namespace BlockDriver.Abstractions;

/// <summary>Argument checks every <see cref="IBlockDevice"/> implementation shares, so that all of them reject
/// the same requests with the same messages. Throwing lives in non-inlined helpers to keep callers small.</summary>
public static class BlockDeviceGuard
{
    /// <summary>Checks that [offset, offset + length) is sector-aligned and inside the device.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is misaligned, negative or past the end.</exception>
    public static void CheckRange(IBlockDevice device, long offset, long length)
    {
        ArgumentNullException.ThrowIfNull(device);
        CheckRange(offset, length, device.Length, device.SectorSize);
    }

    /// <summary>Checks that [offset, offset + length) is aligned to <paramref name="sectorSize"/> and inside
    /// [0, <paramref name="deviceLength"/>).</summary>
    public static void CheckRange(long offset, long length, long deviceLength, int sectorSize)
    {
        long mask = sectorSize - 1;
        if (offset < 0 || length < 0 || offset > deviceLength || length > deviceLength - offset)
        {
            ThrowOutOfRange(offset, length, deviceLength);
        }

        if (((offset | length) & mask) != 0)
        {
            ThrowMisaligned(offset, length, sectorSize);
        }
    }

    /// <summary>Refuses a modification of a read-only device.</summary>
    /// <exception cref="BlockDriverException">Kind <see cref="ErrorKind.ReadOnly"/>.</exception>
    public static void CheckWritable(IBlockDevice device, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (device.IsReadOnly)
        {
            ThrowReadOnly(name ?? device.GetType().Name);
        }
    }

    [DoesNotReturn]
    private static void ThrowOutOfRange(long offset, long length, long deviceLength) =>
        throw new ArgumentOutOfRangeException(
            nameof(offset),
            $"Request [{offset}, +{length}) lies outside the device of {deviceLength} bytes.");

    [DoesNotReturn]
    private static void ThrowMisaligned(long offset, long length, int sectorSize) =>
        throw new ArgumentOutOfRangeException(
            nameof(offset),
            $"Request [{offset}, +{length}) is not aligned to the device's {sectorSize}-byte sectors.");

    [DoesNotReturn]
    private static void ThrowReadOnly(string name) =>
        throw new BlockDriverException(ErrorKind.ReadOnly, $"{name} is read-only.");
}
