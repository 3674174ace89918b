using BlockDriver.Testing;
using Xunit.Abstractions;

namespace BlockDriver.Abstractions.Tests;

/// <summary>The fault double's volatile cache against the model. "Reopen" cuts the power right after a flush, which
/// must lose nothing, and puts a new cache in front of the same memory device.</summary>
public sealed class FaultyBlockDeviceModelTests(ITestOutputHelper output) : BlockDeviceModelTests(output)
{
    private MemoryBlockDevice? _disk;

    protected override bool TrimReadsZeroes => true;

    protected override Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize)
    {
        _disk = new MemoryBlockDevice(length, sectorSize);
        return Task.FromResult<IBlockDevice>(new FaultyBlockDevice(_disk, volatileCache: true, ownsInner: false));
    }

    protected override async Task<IBlockDevice> ReopenAsync(IBlockDevice device)
    {
        var cache = (FaultyBlockDevice)device;
        cache.PowerLoss();
        await cache.DisposeAsync();
        return new FaultyBlockDevice(cache.Inner, volatileCache: true, ownsInner: false);
    }

    protected override async Task CleanupAsync()
    {
        if (_disk is not null)
        {
            await _disk.DisposeAsync();
        }
    }
}
