using BlockDriver.Abstractions;

namespace BlockDriver.Vhdx.Tests.Support;

/// <summary>The reference a chain index is checked against: the per-level walk VhdxDisk did before it had an index.
/// Each file resolves the range itself; what it leaves to its parent is asked of the next file, recursively.</summary>
internal static class ChainWalk
{
    /// <summary>The extents of [offset, offset + length) with <see cref="ChainExtent.Layer"/> indexing
    /// <paramref name="files"/> (top first), merged as every chain producer merges them.</summary>
    public static List<ChainExtent> Map(IReadOnlyList<VhdxFile> files, long offset, long length)
    {
        var output = new List<ChainExtent>();
        Walk(files, 0, offset, length, output);
        return output;
    }

    /// <summary>Reads [offset, offset + length) through <see cref="Map"/>: data from the file that holds it, zeroes
    /// elsewhere.</summary>
    public static async Task<byte[]> ReadAsync(IReadOnlyList<VhdxFile> files, long offset, int length)
    {
        byte[] buffer = new byte[length];
        foreach (ChainExtent extent in Map(files, offset, length))
        {
            if (extent.Kind == ExtentKind.Data)
            {
                await files[extent.Layer].ReadDataAsync(extent.FileOffset, buffer.AsMemory((int)(extent.Offset - offset), (int)extent.Length), default);
            }
        }

        return buffer;
    }

    private static void Walk(IReadOnlyList<VhdxFile> files, int level, long offset, long length, List<ChainExtent> output)
    {
        var runs = new List<BlockRun>();
        files[level].Resolve(offset, length, runs);
        foreach (BlockRun run in runs)
        {
            switch (run.Kind)
            {
                case RunKind.Present:
                    Add(output, new ChainExtent(run.Offset, run.Length, ExtentKind.Data, level, run.FileOffset));
                    break;
                case RunKind.Zero:
                    Add(output, new ChainExtent(run.Offset, run.Length, ExtentKind.Zero, level, -1));
                    break;
                case RunKind.Parent when level + 1 < files.Count:
                    Walk(files, level + 1, run.Offset, run.Length, output);
                    break;
                default:
                    Add(output, new ChainExtent(run.Offset, run.Length, ExtentKind.Hole, -1, -1));
                    break;
            }
        }
    }

    // The merge rule written out independently of ChainIndex.Append: same kind, same file, adjacent, and for
    // data the next bytes of the file.
    private static void Add(List<ChainExtent> output, ChainExtent extent)
    {
        if (output.Count > 0)
        {
            ChainExtent last = output[^1];
            bool adjacent = last.Offset + last.Length == extent.Offset;
            bool sameSource = last.Kind == extent.Kind && last.Layer == extent.Layer;
            bool contiguousData = extent.Kind != ExtentKind.Data || last.FileOffset + last.Length == extent.FileOffset;
            if (adjacent && sameSource && contiguousData)
            {
                output[^1] = last with { Length = last.Length + extent.Length };
                return;
            }
        }

        output.Add(extent);
    }
}
