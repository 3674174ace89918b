using BlockDriver.Abstractions;

namespace BlockDriver.Testing;

/// <summary>Assertions on device content and maps whose failure messages name the device offset and sector of the
/// first difference, instead of dumping megabytes of array.</summary>
public static class DeviceAssert
{
    /// <summary>Fails unless <paramref name="actual"/> equals <paramref name="expected"/>; both start at device
    /// offset <paramref name="deviceOffset"/>.</summary>
    public static void Bytes(ReadOnlySpan<byte> expected, ReadOnlySpan<byte> actual, long deviceOffset, int sectorSize, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: read {actual.Length} bytes, expected {expected.Length}.");
        int first = expected.CommonPrefixLength(actual);
        if (first == expected.Length)
        {
            return;
        }

        int differing = 0;
        for (int i = first; i < expected.Length; i++)
        {
            differing += expected[i] != actual[i] ? 1 : 0;
        }

        long at = deviceOffset + first;
        Assert.Fail($"{what}: byte {at} (sector {at / sectorSize}, +{at % sectorSize}) is 0x{actual[first]:x2}, expected " +
                    $"0x{expected[first]:x2}{(expected[first] == 0 ? " (zero)" : "")}; {differing} of {expected.Length} bytes " +
                    $"from {deviceOffset} differ.");
    }

    /// <summary>Fails unless every byte of <paramref name="actual"/>, read at <paramref name="deviceOffset"/>, is zero.</summary>
    public static void Zeroes(ReadOnlySpan<byte> actual, long deviceOffset, int sectorSize, string what)
    {
        int first = actual.IndexOfAnyExcept((byte)0);
        if (first < 0)
        {
            return;
        }

        long at = deviceOffset + first;
        Assert.Fail($"{what}: byte {at} (sector {at / sectorSize}, +{at % sectorSize}) is 0x{actual[first]:x2}, expected zero.");
    }

    /// <summary>Reads <paramref name="expected"/>.Length bytes of <paramref name="device"/> at <paramref name="offset"/>
    /// and fails unless they equal <paramref name="expected"/>.</summary>
    public static async Task ContentAsync(IBlockDevice device, long offset, byte[] expected, string what)
    {
        byte[] actual = await device.ReadBytesAsync(offset, expected.Length);
        Bytes(expected, actual, offset, device.SectorSize, what);
    }

    /// <summary>Reads [<paramref name="offset"/>, +<paramref name="length"/>) of <paramref name="device"/> and fails
    /// unless it is all zeroes.</summary>
    public static async Task ZeroesAsync(IBlockDevice device, long offset, int length, string what)
    {
        byte[] actual = await device.ReadBytesAsync(offset, length);
        Zeroes(actual, offset, device.SectorSize, what);
    }

    /// <summary>Fails unless <paramref name="extents"/> are sector-aligned, positive, ascending, contiguous and cover
    /// exactly [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>), as
    /// <see cref="IBlockDevice.MapAsync"/> promises.</summary>
    public static void ExtentsCover(IReadOnlyList<Extent> extents, long offset, long length, int sectorSize)
    {
        string map = string.Join(", ", extents.Select(e => $"[{e.Offset}, +{e.Length}) {e.Kind}"));
        string what = $"Map of [{offset}, +{length}) returned {map}";
        long position = offset;
        foreach (Extent extent in extents)
        {
            Assert.True(extent.Offset == position, $"{what}: extent at {extent.Offset} should start at {position}.");
            Assert.True(extent.Length > 0, $"{what}: extent at {extent.Offset} is empty or negative.");
            Assert.True(extent.Offset % sectorSize == 0 && extent.Length % sectorSize == 0,
                $"{what}: extent at {extent.Offset} is not aligned to {sectorSize}-byte sectors.");
            Assert.True(Enum.IsDefined(extent.Kind), $"{what}: extent at {extent.Offset} has undefined kind {(int)extent.Kind}.");
            position = extent.End;
        }

        Assert.True(position == offset + length, $"{what}: extents end at {position}, expected {offset + length}.");
    }
}
