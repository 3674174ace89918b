using BlockDriver.Testing;

namespace BlockDriver.Vhdx.Tests;

/// <summary>Sealed chains shared by every test of one class, as a layer store shares an image's chain among its
/// containers: built on first use (one per length, sector size and depth, see
/// <see cref="VhdxDeviceFactory.CreateSealedChainAsync"/>), opened once as a <see cref="VhdxChain"/>, disposed and
/// deleted with their directory when the class is done, whether its tests passed or not.</summary>
public sealed class SharedChainFixture : IAsyncLifetime
{
    private readonly TempDirectory _temp = new(nameof(SharedChainFixture));
    private readonly Dictionary<(long Length, int SectorSize, int Depth), VhdxChain> _chains = [];
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>The chain of <paramref name="depth"/> differencing files over a base of <paramref name="length"/>
    /// bytes; every call with the same arguments returns the same open chain.</summary>
    public async Task<VhdxChain> GetAsync(long length, int sectorSize, int depth)
    {
        await _gate.WaitAsync();
        try
        {
            if (!_chains.TryGetValue((length, sectorSize, depth), out VhdxChain? chain))
            {
                string top = await VhdxDeviceFactory.CreateSealedChainAsync(_temp.FullName, length, sectorSize, depth, seed: depth);
                chain = VhdxChain.Open(top);
                _chains.Add((length, sectorSize, depth), chain);
            }

            return chain;
        }
        finally
        {
            _gate.Release();
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        try
        {
            foreach (VhdxChain chain in _chains.Values)
            {
                await chain.DisposeAsync();
            }
        }
        finally
        {
            _gate.Dispose();
            _temp.Dispose();
        }
    }
}
