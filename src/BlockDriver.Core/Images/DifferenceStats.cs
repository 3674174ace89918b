namespace BlockDriver.Core.Images;

/// <summary>What a <see cref="DifferenceWriter"/> changed in its target.</summary>
/// <param name="BytesWritten">Bytes written as data.</param>
/// <param name="BytesZeroed">Bytes made to read as zeroes with write-zeroes (no data stored).</param>
public readonly record struct DifferenceStats(long BytesWritten, long BytesZeroed)
{
    /// <summary>True when the target was not changed at all.</summary>
    public bool IsEmpty => BytesWritten == 0 && BytesZeroed == 0;
}
