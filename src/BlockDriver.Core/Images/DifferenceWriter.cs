using System.Buffers;
using BlockDriver.Abstractions;

namespace BlockDriver.Core.Images;

/// <summary>Makes a target device read like a source by writing only the sectors where the two differ, which is the
/// machinery of every copy in <c>img</c>: convert (the target is a new, all-zero file), convert -B and rebase (the
/// target is a new differencing file over the base, so it reads as the base) and commit (the target is the parent
/// itself).</summary>
/// <remarks>
/// <para>Both devices are read a chunk at a time (<see cref="DataMap.ChunkSize"/>), only inside the candidate
/// ranges the caller gives, and compared sector by sector. A run of differing sectors is written as data, or, where
/// the source reads as zeroes, with write-zeroes, which costs no data blocks (a ZERO block in VHDX, a punched hole
/// in a raw file). Sectors that already match are not written, so a new differencing file gets exactly the sectors
/// that differ from its base, and a new dynamic or raw file stays sparse.</para>
/// <para>The comparison granularity is the larger sector size of the two devices (a 512-byte write into a
/// 4096-byte-sector VHDX would be refused anyway). The target is read back before each chunk is written, so it may
/// be the very device a caller thinks of as the base.</para>
/// </remarks>
public static class DifferenceWriter
{
    private enum SectorState : byte
    {
        Same,
        Data,
        Zero,
    }

    /// <summary>Writes into <paramref name="target"/> every sector in which it differs from
    /// <paramref name="source"/>, looking only inside <paramref name="candidates"/> (widened to whole sectors): the
    /// caller vouches that outside them both devices read the same. <paramref name="progress"/> (may be null)
    /// receives the offset up to which the work is done. Does not flush.</summary>
    /// <exception cref="BlockDriverException">InvalidArgument when the devices differ in length.</exception>
    public static async Task<DifferenceStats> WriteAsync(IBlockDevice source, IBlockDevice target, DataMap candidates,
        IProgress<long>? progress, CancellationToken ct)
    {
        if (source.Length != target.Length)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"The source is {source.Length} bytes but the target {target.Length}; they must be the same size.");
        }

        int sector = Math.Max(source.SectorSize, target.SectorSize);
        byte[] wanted = ArrayPool<byte>.Shared.Rent(DataMap.ChunkSize);
        byte[] current = ArrayPool<byte>.Shared.Rent(DataMap.ChunkSize);
        long written = 0;
        long zeroed = 0;
        try
        {
            foreach ((long start, long end) in candidates.Chunks(0, source.Length, sector))
            {
                int length = (int)(end - start);
                await source.ReadAsync(start, wanted.AsMemory(0, length), ct).ConfigureAwait(false);
                await target.ReadAsync(start, current.AsMemory(0, length), ct).ConfigureAwait(false);

                int runStart = 0;
                SectorState runState = Classify(wanted, current, 0, sector);
                for (int i = sector; i <= length; i += sector)
                {
                    SectorState state = i < length ? Classify(wanted, current, i, sector) : SectorState.Same;
                    if (i < length && state == runState)
                    {
                        continue;
                    }

                    int runLength = i - runStart;
                    if (runState == SectorState.Data)
                    {
                        await target.WriteAsync(start + runStart, wanted.AsMemory(runStart, runLength), ct: ct).ConfigureAwait(false);
                        written += runLength;
                    }
                    else if (runState == SectorState.Zero)
                    {
                        await target.WriteZeroesAsync(start + runStart, runLength, ct).ConfigureAwait(false);
                        zeroed += runLength;
                    }

                    runStart = i;
                    runState = state;
                }

                progress?.Report(end);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(wanted);
            ArrayPool<byte>.Shared.Return(current);
        }

        progress?.Report(source.Length);
        return new DifferenceStats(written, zeroed);
    }

    private static SectorState Classify(byte[] wanted, byte[] current, int offset, int sector)
    {
        ReadOnlySpan<byte> w = wanted.AsSpan(offset, sector);
        if (w.SequenceEqual(current.AsSpan(offset, sector)))
        {
            return SectorState.Same;
        }

        return w.ContainsAnyExcept((byte)0) ? SectorState.Data : SectorState.Zero;
    }
}
