using BlockDriver.Testing;
using Xunit.Abstractions;

namespace BlockDriver.Abstractions.Tests;

public sealed class MemoryBlockDevice512ModelTests(ITestOutputHelper output) : BlockDeviceModelTests(output)
{
    protected override bool TrimReadsZeroes => true;

    protected override Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize) =>
        Task.FromResult<IBlockDevice>(new MemoryBlockDevice(length, sectorSize));
}
