namespace BlockDriver.Vhdx.Tests;

public sealed class SharedChain64ConformanceTests(SharedChainFixture chains) : SharedChainConformanceTests(chains), IClassFixture<SharedChainFixture>
{
    protected override int Depth => 64;
}
