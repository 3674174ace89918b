using BlockDriver.Abstractions;
using BlockDriver.Testing;

namespace BlockDriver.Vhdx.Tests;

/// <summary>Builds the VHDX shapes the shared suites run against: a dynamic file, a child at the top of an
/// empty chain of <c>depth</c> differencing files (so every unwritten sector resolves through the whole chain), or a
/// writable child opened over a shared, sealed <see cref="VhdxChain"/>.</summary>
internal static class VhdxDeviceFactory
{
    public const int BlockSize = 1 << 20;

    public static async Task<VhdxDisk> CreateAsync(TempDirectory temp, long length, int sectorSize, int depth, bool readOnly = false)
    {
        string name = Guid.NewGuid().ToString("N");
        string path = temp.GetFilePath($"{name}-0.vhdx");
        VhdxFile.CreateDynamic(path, length, new VhdxCreateOptions { BlockSize = BlockSize, LogicalSectorSize = sectorSize });
        for (int level = 1; level <= depth; level++)
        {
            string child = temp.GetFilePath($"{name}-{level}.vhdx");
            await VhdxFile.CreateDifferencingAsync(child, path);
            path = child;
        }

        return VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = readOnly });
    }

    /// <summary>Writes a pattern into a fresh chain, closes it and reopens it read-only.</summary>
    public static async Task<IBlockDevice> CreateReadOnlyAsync(TempDirectory temp, long length, int sectorSize, int depth)
    {
        string top;
        await using (VhdxDisk writer = await CreateAsync(temp, length, sectorSize, depth))
        {
            await writer.WriteAsync(0, TestPatterns.Bytes(7, 4 << 20));
            top = writer.Top.Path;
        }

        return VhdxDisk.Open(top, new VhdxOpenOptions { ReadOnly = true });
    }

    /// <summary>Closes a disk and opens its top file again, writable: what persisted is what reads back.</summary>
    public static async Task<IBlockDevice> ReopenAsync(IBlockDevice device)
    {
        var disk = (VhdxDisk)device;
        string top = disk.Top.Path;
        await disk.DisposeAsync();
        return VhdxDisk.Open(top);
    }

    /// <summary>Creates a sealed chain of <paramref name="depth"/> differencing files over a dynamic base, in
    /// <paramref name="directory"/>, and returns its top file's path. It reads as zeroes everywhere, yet every layer
    /// decides something: each file below the top writes data (a few sectors, and every third layer a whole block)
    /// and the file above zeroes exactly that again, so the merged index holds data (hole-punched sectors marked
    /// present), ZERO blocks and holes from files all along the chain.</summary>
    public static async Task<string> CreateSealedChainAsync(string directory, long length, int sectorSize, int depth, int seed)
    {
        var random = new Random(seed);
        long sectors = length / sectorSize;
        string name = Guid.NewGuid().ToString("N");
        string path = Path.Combine(directory, $"{name}-00.vhdx");
        VhdxFile.CreateDynamic(path, length, new VhdxCreateOptions { BlockSize = BlockSize, LogicalSectorSize = sectorSize });
        List<(long Offset, int Length)> below = [];
        for (int layer = 0; layer <= depth; layer++)
        {
            if (layer > 0)
            {
                string child = Path.Combine(directory, $"{name}-{layer:D2}.vhdx");
                await VhdxFile.CreateDifferencingAsync(child, path);
                path = child;
            }

            await using VhdxDisk disk = VhdxDisk.Open(path);
            foreach ((long offset, int count) in below)
            {
                await disk.WriteZeroesAsync(offset, count);
            }

            below = [];
            if (layer < depth)
            {
                int run = random.Next(1, 17);
                below.Add((random.NextInt64(sectors - run) * sectorSize, run * sectorSize));
                if (layer % 3 == 0)
                {
                    below.Add((random.NextInt64(length / BlockSize) * BlockSize, BlockSize));
                }

                foreach ((long offset, int count) in below)
                {
                    await disk.WriteAsync(offset, TestPatterns.Bytes(seed + layer, count));
                }
            }

            await disk.FlushAsync();
        }

        return path;
    }

    /// <summary>Creates an empty differencing file over <paramref name="chain"/>'s top in <paramref name="temp"/> and
    /// opens it over the shared chain.</summary>
    public static async Task<VhdxDisk> CreateOnChainAsync(TempDirectory temp, VhdxChain chain, bool readOnly = false)
    {
        string path = temp.GetFilePath($"{Guid.NewGuid():N}-top.vhdx");
        await VhdxFile.CreateDifferencingAsync(path, chain.Top.Path);
        return VhdxDisk.Open(path, chain, new VhdxOpenOptions { ReadOnly = readOnly });
    }

    /// <summary>Writes a pattern into a fresh child of <paramref name="chain"/>, closes it and reopens it
    /// read-only over the chain.</summary>
    public static async Task<IBlockDevice> CreateReadOnlyOnChainAsync(TempDirectory temp, VhdxChain chain)
    {
        string top;
        await using (VhdxDisk writer = await CreateOnChainAsync(temp, chain))
        {
            await writer.WriteAsync(0, TestPatterns.Bytes(7, 4 << 20));
            top = writer.Top.Path;
        }

        return VhdxDisk.Open(top, chain, new VhdxOpenOptions { ReadOnly = true });
    }

    /// <summary>Closes a disk opened over a shared chain and opens its top file again, writable, over the same
    /// chain (which stays open).</summary>
    public static async Task<IBlockDevice> ReopenOnChainAsync(IBlockDevice device)
    {
        var disk = (VhdxDisk)device;
        VhdxChain chain = disk.Chain ?? throw new InvalidOperationException($"{disk.Top.Path} has no chain.");
        string top = disk.Top.Path;
        await disk.DisposeAsync();
        return VhdxDisk.Open(top, chain);
    }
}
