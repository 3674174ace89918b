using BlockDriver.Testing;

namespace BlockDriver.Abstractions.Tests;

public sealed class MemoryBlockDevice4096ConformanceTests : BlockDeviceConformanceTests
{
    protected override int SectorSize => 4096;

    protected override bool TrimReadsZeroes => true;

    protected override Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize) =>
        Task.FromResult<IBlockDevice>(new MemoryBlockDevice(length, sectorSize));

    protected override Task<IBlockDevice> CreateReadOnlyDeviceAsync(long length, int sectorSize) =>
        Task.FromResult<IBlockDevice>(new MemoryBlockDevice(length, sectorSize, isReadOnly: true));
}
