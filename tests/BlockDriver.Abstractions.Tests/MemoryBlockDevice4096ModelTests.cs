using BlockDriver.Testing;
using Xunit.Abstractions;

namespace BlockDriver.Abstractions.Tests;

public sealed class MemoryBlockDevice4096ModelTests(ITestOutputHelper output) : BlockDeviceModelTests(output)
{
    protected override int SectorSize => 4096;

    protected override bool TrimReadsZeroes => true;

    protected override Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize) =>
        Task.FromResult<IBlockDevice>(new MemoryBlockDevice(length, sectorSize));
}
