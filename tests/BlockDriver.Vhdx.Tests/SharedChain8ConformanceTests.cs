namespace BlockDriver.Vhdx.Tests;

public sealed class SharedChain8ConformanceTests(SharedChainFixture chains) : SharedChainConformanceTests(chains), IClassFixture<SharedChainFixture>
{
    protected override int Depth => 8;
}
