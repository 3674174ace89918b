using BlockDriver.Abstractions;
using BlockDriver.Vhdx;

namespace BlockDriver.Core.Images;

/// <summary>Finds where two devices of equal length may differ, so that a <see cref="DifferenceWriter"/> or a
/// comparison reads only there.</summary>
public static class DifferenceCandidates
{
    /// <summary>Everywhere either device has data, except, when both are VHDX chains, the ranges that both chains
    /// take from the same file at the same place (a shared ancestor, as in rebasing onto a grandparent or
    /// converting a child with <c>-B</c> its own base): those read the same without reading them.</summary>
    public static async Task<DataMap> LoadAsync(IBlockDevice a, IBlockDevice b, CancellationToken ct)
    {
        if (a is VhdxDisk chainA && b is VhdxDisk chainB && a.Length == b.Length)
        {
            return await LoadChainsAsync(chainA, chainB, ct).ConfigureAwait(false);
        }

        DataMap mapA = await DataMap.LoadAsync(a, ct).ConfigureAwait(false);
        DataMap mapB = await DataMap.LoadAsync(b, ct).ConfigureAwait(false);
        return DataMap.Union(mapA, mapB);
    }

    private static async Task<DataMap> LoadChainsAsync(VhdxDisk a, VhdxDisk b, CancellationToken ct)
    {
        List<ChainExtent> extentsA = await a.MapChainAsync(0, a.Length, ct).ToListAsync(ct).ConfigureAwait(false);
        List<ChainExtent> extentsB = await b.MapChainAsync(0, b.Length, ct).ToListAsync(ct).ConfigureAwait(false);
        string[] filesA = [.. a.Files.Select(f => Canonical(f.Path))];
        string[] filesB = [.. b.Files.Select(f => Canonical(f.Path))];

        // Both lists cover [0, Length) in order; walk them together over the pieces where neither changes.
        var ranges = new List<(long Start, long End)>();
        int i = 0;
        int j = 0;
        long position = 0;
        while (i < extentsA.Count && j < extentsB.Count)
        {
            ChainExtent x = extentsA[i];
            ChainExtent y = extentsB[j];
            long end = Math.Min(x.Offset + x.Length, y.Offset + y.Length);
            bool dataX = x.Kind == ExtentKind.Data;
            bool dataY = y.Kind == ExtentKind.Data;
            bool shared = dataX && dataY
                && filesA[x.Layer] == filesB[y.Layer]
                && x.FileOffset + (position - x.Offset) == y.FileOffset + (position - y.Offset);
            if ((dataX || dataY) && !shared)
            {
                ranges.Add((position, end));
            }

            position = end;
            if (x.Offset + x.Length == end)
            {
                i++;
            }

            if (y.Offset + y.Length == end)
            {
                j++;
            }
        }

        return DataMap.FromRanges(ranges);
    }

    private static string Canonical(string path)
    {
        string full = Path.GetFullPath(path);
        return File.ResolveLinkTarget(full, returnFinalTarget: true)?.FullName ?? full;
    }
}
