using BlockDriver.Abstractions;

namespace BlockDriver.Core.Images;

/// <summary>Byte ranges of a device, sorted and merged: where it may hold non-zero data (everything else reads as
/// zeroes), or where two devices may differ. Copy and compare loops read only inside them, a chunk at a time.</summary>
public sealed class DataMap
{
    /// <summary>The most a copy or compare loop reads at once: 4 MiB, large enough that per-request overhead
    /// vanishes, small enough for two pooled buffers. A multiple of every sector size.</summary>
    public const int ChunkSize = 4 * 1024 * 1024;

    private readonly List<(long Start, long End)> _ranges;

    private DataMap(List<(long Start, long End)> ranges)
    {
        _ranges = ranges;
    }

    /// <summary>Bytes inside the ranges.</summary>
    public long DataBytes => _ranges.Sum(r => r.End - r.Start);

    /// <summary>Maps the whole device and keeps its <see cref="ExtentKind.Data"/> extents.</summary>
    public static async Task<DataMap> LoadAsync(IBlockDevice device, CancellationToken ct)
    {
        var ranges = new List<(long Start, long End)>();
        await foreach (Extent extent in device.MapAsync(0, device.Length, ct).ConfigureAwait(false))
        {
            if (extent.Kind == ExtentKind.Data)
            {
                ranges.Add((extent.Offset, extent.End));
            }
        }

        return FromRanges(ranges);
    }

    /// <summary>A map of the given ranges, in any order, overlapping or not.</summary>
    public static DataMap FromRanges(IEnumerable<(long Start, long End)> ranges)
    {
        var merged = new List<(long Start, long End)>();
        foreach ((long start, long end) in ranges.Where(r => r.End > r.Start).OrderBy(r => r.Start))
        {
            if (merged.Count > 0 && start <= merged[^1].End)
            {
                merged[^1] = (merged[^1].Start, Math.Max(merged[^1].End, end));
            }
            else
            {
                merged.Add((start, end));
            }
        }

        return new DataMap(merged);
    }

    /// <summary>The union of two maps.</summary>
    public static DataMap Union(DataMap a, DataMap b) => FromRanges(a._ranges.Concat(b._ranges));

    /// <summary>The parts of [start, end) inside the ranges, in order and without overlap, each widened outwards to
    /// multiples of <paramref name="alignment"/> (but never past start or end) and cut at multiples of
    /// <see cref="ChunkSize"/>.</summary>
    /// <param name="start">Where to begin; pieces start here at the earliest, aligned or not.</param>
    /// <param name="end">Where to stop.</param>
    /// <param name="alignment">A power of two: the sector size the pieces are read in.</param>
    public IEnumerable<(long Start, long End)> Chunks(long start, long end, int alignment)
    {
        long mask = alignment - 1;
        long position = start;
        for (int i = FirstEndingAfter(start); i < _ranges.Count && _ranges[i].Start < end; i++)
        {
            long pieceStart = Math.Max(position, _ranges[i].Start & ~mask);
            long rangeEnd = Math.Min(end, (_ranges[i].End + mask) & ~mask);
            while (pieceStart < rangeEnd)
            {
                long pieceEnd = Math.Min(rangeEnd, pieceStart - (pieceStart % ChunkSize) + ChunkSize);
                yield return (pieceStart, pieceEnd);
                pieceStart = pieceEnd;
            }

            position = Math.Max(position, rangeEnd);
        }
    }

    // Binary search for the first range that ends after position.
    private int FirstEndingAfter(long position)
    {
        int lo = 0;
        int hi = _ranges.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_ranges[mid].End <= position)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }
}
