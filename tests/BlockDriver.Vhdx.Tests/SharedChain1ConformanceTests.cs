namespace BlockDriver.Vhdx.Tests;

public sealed class SharedChain1ConformanceTests(SharedChainFixture chains) : SharedChainConformanceTests(chains), IClassFixture<SharedChainFixture>
{
    protected override int Depth => 1;
}
