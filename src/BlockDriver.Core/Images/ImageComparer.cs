using System.Buffers;
using BlockDriver.Abstractions;

namespace BlockDriver.Core.Images;

/// <summary>Compares the guest-visible contents of two devices, as <c>qemu-img compare</c> does: byte for byte
/// over the common length, and when the lengths differ the rest of the larger one must read as zeroes.</summary>
public static class ImageComparer
{
    /// <summary>Returns the offset of the first byte that differs, or null when the contents are identical.
    /// Ranges where neither device has data are not read. <paramref name="progress"/> (may be null) receives the
    /// offset up to which the comparison is done.</summary>
    public static async Task<long?> FindFirstDifferenceAsync(IBlockDevice a, IBlockDevice b, IProgress<long>? progress, CancellationToken ct)
    {
        long common = Math.Min(a.Length, b.Length);
        DataMap candidates = await DifferenceCandidates.LoadAsync(a, b, ct).ConfigureAwait(false);
        byte[] bufferA = ArrayPool<byte>.Shared.Rent(DataMap.ChunkSize);
        byte[] bufferB = ArrayPool<byte>.Shared.Rent(DataMap.ChunkSize);
        try
        {
            int sector = Math.Max(a.SectorSize, b.SectorSize);
            foreach ((long start, long end) in candidates.Chunks(0, common, sector))
            {
                int length = (int)(end - start);
                await ReadAsync(a, start, bufferA.AsMemory(0, length), ct).ConfigureAwait(false);
                await ReadAsync(b, start, bufferB.AsMemory(0, length), ct).ConfigureAwait(false);
                int same = bufferA.AsSpan(0, length).CommonPrefixLength(bufferB.AsSpan(0, length));
                if (same < length)
                {
                    return start + same;
                }

                progress?.Report(end);
            }

            IBlockDevice larger = a.Length > b.Length ? a : b;
            DataMap extra = await DataMap.LoadAsync(larger, ct).ConfigureAwait(false);
            foreach ((long start, long end) in extra.Chunks(common, larger.Length, larger.SectorSize))
            {
                int length = (int)(end - start);
                await ReadAsync(larger, start, bufferA.AsMemory(0, length), ct).ConfigureAwait(false);
                int nonZero = bufferA.AsSpan(0, length).IndexOfAnyExcept((byte)0);
                if (nonZero >= 0)
                {
                    return start + nonZero;
                }

                progress?.Report(end);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bufferA);
            ArrayPool<byte>.Shared.Return(bufferB);
        }

        progress?.Report(Math.Max(a.Length, b.Length));
        return null;
    }

    // Reads any byte range: devices require sector-aligned requests, and when two devices of different lengths and
    // sector sizes are compared, the end of the common part (or the start of the rest) may fall inside a sector of
    // one of them. Aligned requests, the usual case, go straight through.
    private static async ValueTask ReadAsync(IBlockDevice device, long offset, Memory<byte> buffer, CancellationToken ct)
    {
        long mask = device.SectorSize - 1;
        if (((offset | (long)buffer.Length) & mask) == 0)
        {
            await device.ReadAsync(offset, buffer, ct).ConfigureAwait(false);
            return;
        }

        long alignedStart = offset & ~mask;
        long alignedEnd = (offset + buffer.Length + mask) & ~mask;
        int length = (int)(alignedEnd - alignedStart);
        byte[] bounce = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            await device.ReadAsync(alignedStart, bounce.AsMemory(0, length), ct).ConfigureAwait(false);
            bounce.AsSpan((int)(offset - alignedStart), buffer.Length).CopyTo(buffer.Span);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bounce);
        }
    }
}
