using BlockDriver.Abstractions;
using BlockDriver.Testing;
using Xunit.Abstractions;

namespace BlockDriver.Vhdx.Tests;

/// <summary>The model-based random test over a writable child opened on a shared <see cref="VhdxChain"/> of
/// <see cref="Depth"/> differencing files, reopened over the same chain now and then; subclasses pick the depth.</summary>
public abstract class SharedChainModelTests(SharedChainFixture chains, ITestOutputHelper output) : BlockDeviceModelTests(output)
{
    protected abstract int Depth { get; }

    protected override async Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize) =>
        await VhdxDeviceFactory.CreateOnChainAsync(Temp, await chains.GetAsync(length, sectorSize, Depth));

    protected override Task<IBlockDevice> ReopenAsync(IBlockDevice device) => VhdxDeviceFactory.ReopenOnChainAsync(device);
}
