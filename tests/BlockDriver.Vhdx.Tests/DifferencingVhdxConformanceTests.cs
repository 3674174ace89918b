using BlockDriver.Abstractions;
using BlockDriver.Testing;

namespace BlockDriver.Vhdx.Tests;

public sealed class DifferencingVhdxConformanceTests : BlockDeviceConformanceTests
{
    protected override int BlockSize => VhdxDeviceFactory.BlockSize;

    protected override async Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize) =>
        await VhdxDeviceFactory.CreateAsync(Temp, length, sectorSize, depth: 3);

    protected override Task<IBlockDevice> CreateReadOnlyDeviceAsync(long length, int sectorSize) =>
        VhdxDeviceFactory.CreateReadOnlyAsync(Temp, length, sectorSize, depth: 3);
}
