using BlockDriver.Abstractions;

namespace BlockDriver.Testing;

/// <summary>Conveniences for tests that drive an <see cref="IBlockDevice"/>.</summary>
public static class BlockDeviceTestExtensions
{
    /// <summary>Reads <paramref name="length"/> bytes at <paramref name="offset"/> into a new array.</summary>
    public static async Task<byte[]> ReadBytesAsync(this IBlockDevice device, long offset, int length, CancellationToken ct = default)
    {
        byte[] buffer = new byte[length];
        await device.ReadAsync(offset, buffer, ct);
        return buffer;
    }

    /// <summary>Reads the whole device into a new array; for devices of at most 2 GiB.</summary>
    public static Task<byte[]> ReadAllBytesAsync(this IBlockDevice device, CancellationToken ct = default) =>
        device.ReadBytesAsync(0, checked((int)device.Length), ct);

    /// <summary>Collects <see cref="IBlockDevice.MapAsync"/> into a list.</summary>
    public static async Task<IReadOnlyList<Extent>> MapToListAsync(this IBlockDevice device, long offset, long length, CancellationToken ct = default)
    {
        var extents = new List<Extent>();
        await foreach (Extent extent in device.MapAsync(offset, length, ct))
        {
            extents.Add(extent);
        }

        return extents;
    }
}
