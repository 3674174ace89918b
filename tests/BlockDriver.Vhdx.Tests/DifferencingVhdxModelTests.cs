using BlockDriver.Abstractions;
using BlockDriver.Testing;
using Xunit.Abstractions;

namespace BlockDriver.Vhdx.Tests;

public sealed class DifferencingVhdxModelTests(ITestOutputHelper output) : BlockDeviceModelTests(output)
{
    protected override async Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize) =>
        await VhdxDeviceFactory.CreateAsync(Temp, length, sectorSize, depth: 2);

    protected override Task<IBlockDevice> ReopenAsync(IBlockDevice device) => VhdxDeviceFactory.ReopenAsync(device);
}
