using Xunit.Abstractions;

namespace BlockDriver.Vhdx.Tests;

public sealed class SharedChain1ModelTests(SharedChainFixture chains, ITestOutputHelper output) : SharedChainModelTests(chains, output), IClassFixture<SharedChainFixture>
{
    protected override int Depth => 1;
}
