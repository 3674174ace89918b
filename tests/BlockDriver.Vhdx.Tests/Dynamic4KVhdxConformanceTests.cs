using BlockDriver.Abstractions;
using BlockDriver.Testing;

namespace BlockDriver.Vhdx.Tests;

public sealed class Dynamic4KVhdxConformanceTests : BlockDeviceConformanceTests
{
    protected override int SectorSize => 4096;

    protected override int BlockSize => VhdxDeviceFactory.BlockSize;

    protected override async Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize) =>
        await VhdxDeviceFactory.CreateAsync(Temp, length, sectorSize, depth: 0);

    protected override Task<IBlockDevice> CreateReadOnlyDeviceAsync(long length, int sectorSize) =>
        VhdxDeviceFactory.CreateReadOnlyAsync(Temp, length, sectorSize, depth: 0);
}
