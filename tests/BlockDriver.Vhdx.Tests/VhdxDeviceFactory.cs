using BlockDriver.Abstractions;
using BlockDriver.Testing;

namespace BlockDriver.Vhdx.Tests;

/// <summary>Builds the VHDX shapes the shared suites run against: a dynamic file, or a child at the top of an
/// empty chain of <c>depth</c> differencing files (so every unwritten sector resolves through the whole chain).</summary>
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
}
