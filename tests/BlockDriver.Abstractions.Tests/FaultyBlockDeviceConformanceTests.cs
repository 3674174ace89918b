using BlockDriver.Testing;

namespace BlockDriver.Abstractions.Tests;

/// <summary>The fault double with its volatile cache on but no faults armed must itself be a conforming device.</summary>
public sealed class FaultyBlockDeviceConformanceTests : BlockDeviceConformanceTests
{
    protected override bool TrimReadsZeroes => true;

    protected override Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize) =>
        Task.FromResult<IBlockDevice>(new FaultyBlockDevice(new MemoryBlockDevice(length, sectorSize), volatileCache: true));

    protected override Task<IBlockDevice> CreateReadOnlyDeviceAsync(long length, int sectorSize) =>
        Task.FromResult<IBlockDevice>(new FaultyBlockDevice(new MemoryBlockDevice(length, sectorSize, isReadOnly: true), volatileCache: true));
}
