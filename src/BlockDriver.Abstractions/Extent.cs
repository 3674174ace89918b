namespace BlockDriver.Abstractions;

/// <summary>A byte range of a device and what backs it.</summary>
/// <param name="Offset">Start, in bytes.</param>
/// <param name="Length">Length, in bytes; positive.</param>
/// <param name="Kind">What a read of the range returns and whether it costs storage.</param>
public readonly record struct Extent(long Offset, long Length, ExtentKind Kind)
{
    /// <summary>One byte past the end of the extent.</summary>
    public long End => Offset + Length;
}
