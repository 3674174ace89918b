using BlockDriver.Abstractions;

namespace BlockDriver.Vhdx;

/// <summary>The read path shared by <see cref="VhdxDisk"/> and <see cref="VhdxChain"/>: a request is resolved into
/// extents first (in memory, no awaits), then each data extent is read from the file that holds it.</summary>
/// <remarks>The extent list of a request is rented from a per-thread slot and given back when the request ends
/// (possibly on another thread), so that a steady stream of reads allocates no lists.</remarks>
internal static class ChainReader
{
    // Lists that grew past this stay with the request that needed them, so a rare huge read pins no memory.
    private const int MaxCachedCapacity = 256;

    [ThreadStatic]
    private static List<ChainExtent>? _cached;

    /// <summary>An empty list, the thread's cached one when it has one.</summary>
    public static List<ChainExtent> Rent()
    {
        List<ChainExtent>? list = _cached;
        if (list is null)
        {
            return new List<ChainExtent>(8);
        }

        _cached = null;
        return list;
    }

    /// <summary>Fills <paramref name="buffer"/> (the bytes from <paramref name="offset"/>) from
    /// <paramref name="extents"/>, which cover exactly that range and name files by index into
    /// <paramref name="files"/>; gives the list back at the end.</summary>
    public static ValueTask ReadAsync(VhdxFile[] files, List<ChainExtent> extents, long offset, Memory<byte> buffer, CancellationToken ct)
    {
        if (extents.Count == 1)
        {
            // The common case (one file holds the whole request, or nothing does) needs no state machine here.
            ChainExtent only = extents[0];
            Return(extents);
            if (only.Kind == ExtentKind.Data)
            {
                return files[only.Layer].ReadDataAsync(only.FileOffset, buffer, ct);
            }

            buffer.Span.Clear();
            return ValueTask.CompletedTask;
        }

        return ReadManyAsync(files, extents, offset, buffer, ct);
    }

    private static async ValueTask ReadManyAsync(VhdxFile[] files, List<ChainExtent> extents, long offset, Memory<byte> buffer, CancellationToken ct)
    {
        try
        {
            foreach (ChainExtent extent in extents)
            {
                Memory<byte> slice = buffer.Slice((int)(extent.Offset - offset), (int)extent.Length);
                if (extent.Kind == ExtentKind.Data)
                {
                    await files[extent.Layer].ReadDataAsync(extent.FileOffset, slice, ct).ConfigureAwait(false);
                }
                else
                {
                    slice.Span.Clear();
                }
            }
        }
        finally
        {
            Return(extents);
        }
    }

    private static void Return(List<ChainExtent> list)
    {
        if (list.Capacity <= MaxCachedCapacity)
        {
            list.Clear();
            _cached = list;
        }
    }
}
