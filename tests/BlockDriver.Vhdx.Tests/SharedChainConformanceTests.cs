using BlockDriver.Abstractions;
using BlockDriver.Testing;

namespace BlockDriver.Vhdx.Tests;

/// <summary>The conformance suite over a writable child opened on a shared <see cref="VhdxChain"/> of
/// <see cref="Depth"/> differencing files; subclasses pick the depth.</summary>
public abstract class SharedChainConformanceTests(SharedChainFixture chains) : BlockDeviceConformanceTests
{
    protected abstract int Depth { get; }

    protected override int BlockSize => VhdxDeviceFactory.BlockSize;

    protected override async Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize) =>
        await VhdxDeviceFactory.CreateOnChainAsync(Temp, await chains.GetAsync(length, sectorSize, Depth));

    protected override async Task<IBlockDevice> CreateReadOnlyDeviceAsync(long length, int sectorSize) =>
        await VhdxDeviceFactory.CreateReadOnlyOnChainAsync(Temp, await chains.GetAsync(length, sectorSize, Depth));
}
