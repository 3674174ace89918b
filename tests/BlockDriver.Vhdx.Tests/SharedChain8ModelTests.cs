using Xunit.Abstractions;

namespace BlockDriver.Vhdx.Tests;

public sealed class SharedChain8ModelTests(SharedChainFixture chains, ITestOutputHelper output) : SharedChainModelTests(chains, output), IClassFixture<SharedChainFixture>
{
    protected override int Depth => 8;
}
