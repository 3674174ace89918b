using BlockDriver.Testing;

namespace BlockDriver.Abstractions.Tests;

/// <summary>What the conformance suite cannot say about <see cref="MemoryBlockDevice"/>: constructor checks, chunk
/// release and disposal.</summary>
public sealed class MemoryBlockDeviceTests
{
    [Theory]
    [InlineData(0L, 512)]
    [InlineData(-512L, 512)]
    [InlineData(1000L, 512)]
    [InlineData(4096L + 512, 4096)]
    [InlineData(4096L, 0)]
    [InlineData(4096L, -512)]
    [InlineData(3072L, 3)]
    [InlineData(4000L, 1000)]
    [InlineData(1L << 20, 128 * 1024)]
    public void Constructor_rejects_bad_sizes(long length, int sectorSize)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new MemoryBlockDevice(length, sectorSize));
    }

    [Theory]
    [InlineData(512L, 512)]
    [InlineData(4096L, 4096)]
    [InlineData(64L * 1024, 64 * 1024)]
    [InlineData(1L << 40, 512)]
    public async Task Constructor_accepts_positive_multiples_of_a_power_of_two_sector(long length, int sectorSize)
    {
        await using var device = new MemoryBlockDevice(length, sectorSize);

        Assert.Equal(length, device.Length);
        Assert.Equal(sectorSize, device.SectorSize);
        Assert.Equal(0, device.AllocatedBytes);
        DeviceAssert.Zeroes(await device.ReadBytesAsync(length - sectorSize, sectorSize), length - sectorSize, sectorSize, "Last sector");
    }

    [Fact]
    public async Task Write_zeroes_of_whole_chunks_releases_their_memory()
    {
        const int chunk = 64 * 1024;
        await using var device = new MemoryBlockDevice(1 << 20);
        await device.WriteAsync(0, TestPatterns.Bytes(1, 4 * chunk));
        Assert.Equal(4 * chunk, device.AllocatedBytes);

        // Half of chunk 0, all of chunks 1 and 2, nothing of chunk 3: two chunks go, two stay.
        await device.WriteZeroesAsync(chunk / 2, (chunk / 2) + (2 * chunk));

        Assert.Equal(2 * chunk, device.AllocatedBytes);
        DeviceAssert.Zeroes(await device.ReadBytesAsync(chunk / 2, (chunk / 2) + (2 * chunk)), chunk / 2, 512, "Zeroed range");
    }

    [Fact]
    public async Task Disposed_device_refuses_requests()
    {
        var device = new MemoryBlockDevice(1 << 20);
        await device.WriteAsync(0, new byte[512]);

        await device.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => device.ReadAsync(0, new byte[512]).AsTask());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => device.WriteAsync(0, new byte[512]).AsTask());
        await Assert.ThrowsAsync<ObjectDisposedException>(() => device.FlushAsync().AsTask());
    }
}
