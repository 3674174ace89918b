using System.Buffers.Binary;

namespace BlockDriver.CrashHarness;

/// <summary>The seeded workload the harness runs and the crash test replays: step <c>i</c> depends only on the
/// seed and <c>i</c>, and every written sector carries (seed, step, sector) so a reader can tell which step wrote it.</summary>
public static class CrashWorkload
{
    /// <summary>Sector size of the workload (the VHDX default).</summary>
    public const int SectorSize = 512;

    /// <summary>Magic at the start of every written sector.</summary>
    public const uint Magic = 0xB10C_D15C;

    /// <summary>Yields steps for a disk of <paramref name="diskLength"/> bytes: mostly writes of 1 sector to a few
    /// MiB at random sector offsets, some write-zeroes, and a flush every 3–20 steps.</summary>
    public static IEnumerable<CrashOp> Generate(int seed, long diskLength, int count)
    {
        var random = new Random(seed);
        long sectors = diskLength / SectorSize;
        int untilFlush = random.Next(3, 20);
        for (int i = 0; i < count; i++)
        {
            if (--untilFlush == 0)
            {
                untilFlush = random.Next(3, 20);
                yield return new CrashOp(i, CrashOpKind.Flush, 0, 0);
                continue;
            }

            // Sizes from one sector to a few MiB, skewed small; offsets anywhere, sometimes block aligned.
            int lengthSectors = random.Next(4) switch
            {
                0 => 1,
                1 => random.Next(1, 16),
                2 => random.Next(16, 512),
                _ => random.Next(512, 6144),
            };
            long start = random.Next(3) == 0
                ? random.NextInt64(sectors / 2048) * 2048
                : random.NextInt64(sectors);
            lengthSectors = (int)Math.Min(lengthSectors, sectors - start);
            CrashOpKind kind = random.Next(10) == 0 ? CrashOpKind.WriteZeroes : CrashOpKind.Write;
            yield return new CrashOp(i, kind, start * SectorSize, lengthSectors * SectorSize);
        }
    }

    /// <summary>Fills <paramref name="sector"/> (512 bytes) with the content step <paramref name="step"/> writes to
    /// disk sector <paramref name="sectorNumber"/>: magic, seed, step, sector number, then derived bytes.</summary>
    public static void SectorPattern(int seed, int step, long sectorNumber, Span<byte> sector)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(sector, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(sector[4..], seed);
        BinaryPrimitives.WriteInt32LittleEndian(sector[8..], step);
        BinaryPrimitives.WriteInt64LittleEndian(sector[12..], sectorNumber);
        ulong x = (ulong)(((long)seed * 1_000_003) ^ ((long)step << 20) ^ sectorNumber) | 1;
        for (int i = 20; i + 8 <= SectorSize; i += 8)
        {
            // xorshift64: cheap, deterministic filler that differs per sector.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            BinaryPrimitives.WriteUInt64LittleEndian(sector[i..], x);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(sector[(SectorSize - 4)..], (uint)x);
    }
}
