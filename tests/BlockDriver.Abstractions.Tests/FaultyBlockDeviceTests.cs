using BlockDriver.Testing;

namespace BlockDriver.Abstractions.Tests;

public sealed class FaultyBlockDeviceTests
{
    private const int Sector = 512;

    [Fact]
    public async Task Writes_fail_after_the_configured_count()
    {
        var disk = new MemoryBlockDevice(1 << 20);
        await using var device = new FaultyBlockDevice(disk) { FailAfterWrites = 2 };
        byte[] first = TestPatterns.Bytes(1, Sector);
        byte[] second = TestPatterns.Bytes(2, Sector);

        await device.WriteAsync(0, first);
        await device.WriteAsync(Sector, second);
        await Assert.ThrowsAsync<IOException>(() => device.WriteAsync(2 * Sector, TestPatterns.Bytes(3, Sector)).AsTask());
        await Assert.ThrowsAsync<IOException>(() => device.WriteZeroesAsync(0, Sector).AsTask());
        await Assert.ThrowsAsync<IOException>(() => device.TrimAsync(Sector, Sector).AsTask());

        Assert.Equal(5, device.WriteCount);
        byte[] expected = [.. first, .. second, .. new byte[Sector]];
        await DeviceAssert.ContentAsync(disk, 0, expected, "Inner device after failed writes");
    }

    [Fact]
    public async Task Invalid_requests_do_not_count_as_writes()
    {
        await using var device = new FaultyBlockDevice(new MemoryBlockDevice(1 << 20)) { FailAfterWrites = 1 };

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => device.WriteAsync(1, new byte[Sector]).AsTask());
        await device.WriteAsync(0, new byte[Sector]);

        Assert.Equal(1, device.WriteCount);
    }

    [Fact]
    public async Task The_configured_flush_fails_and_later_flushes_work()
    {
        var disk = new MemoryBlockDevice(1 << 20);
        await using var device = new FaultyBlockDevice(disk, volatileCache: true) { FailOnFlush = 2 };
        byte[] data = TestPatterns.Bytes(4, Sector);

        await device.FlushAsync();
        await device.WriteAsync(0, data);
        await Assert.ThrowsAsync<IOException>(() => device.FlushAsync().AsTask());

        await DeviceAssert.ZeroesAsync(disk, 0, Sector, "Inner device after the failed flush");
        await device.FlushAsync();
        await DeviceAssert.ContentAsync(disk, 0, data, "Inner device after the next flush");
        Assert.Equal(3, device.FlushCount);
    }

    [Fact]
    public async Task Cached_writes_are_visible_before_the_flush_and_reach_the_inner_device_with_it()
    {
        var disk = new MemoryBlockDevice(1 << 20);
        await using var device = new FaultyBlockDevice(disk, volatileCache: true);
        byte[] data = TestPatterns.Bytes(5, 4 * Sector);
        await disk.WriteAsync(0, TestPatterns.Bytes(6, 8 * Sector));

        await device.WriteAsync(Sector, data);
        await device.WriteZeroesAsync(2 * Sector, Sector);
        data.AsSpan(Sector, Sector).Clear();

        Assert.Equal(2, device.PendingWriteCount);
        await DeviceAssert.ContentAsync(device, Sector, data, "Read through the cache");
        await DeviceAssert.ContentAsync(disk, Sector, TestPatterns.Bytes(6, 8 * Sector)[Sector..(Sector + data.Length)], "Inner device before the flush");
        await device.FlushAsync();
        Assert.Equal(0, device.PendingWriteCount);
        await DeviceAssert.ContentAsync(disk, Sector, data, "Inner device after the flush");
    }

    [Fact]
    public async Task Power_loss_drops_unflushed_writes_and_crashes_the_device()
    {
        var disk = new MemoryBlockDevice(1 << 20);
        var device = new FaultyBlockDevice(disk, volatileCache: true, ownsInner: false);
        byte[] flushed = TestPatterns.Bytes(7, Sector);
        await device.WriteAsync(0, flushed);
        await device.FlushAsync();
        await device.WriteAsync(0, TestPatterns.Bytes(8, Sector));
        await device.WriteAsync(Sector, TestPatterns.Bytes(9, Sector));

        device.PowerLoss();
        await device.DisposeAsync();

        Assert.True(device.IsCrashed);
        await DeviceAssert.ContentAsync(disk, 0, [.. flushed, .. new byte[Sector]], "Inner device after power loss");
    }

    [Fact]
    public async Task Fua_write_reaches_the_inner_device_at_once()
    {
        var disk = new MemoryBlockDevice(1 << 20);
        await using var device = new FaultyBlockDevice(disk, volatileCache: true);
        byte[] fua = TestPatterns.Bytes(10, Sector);
        await device.WriteAsync(0, TestPatterns.Bytes(11, 2 * Sector));

        await device.WriteAsync(Sector, fua, forceUnitAccess: true);
        device.PowerLoss();

        await DeviceAssert.ContentAsync(disk, Sector, fua, "FUA sector after power loss");
    }

    [Fact]
    public async Task Torn_flush_leaves_each_sector_old_or_new_and_crashes_the_device()
    {
        const int sectors = 64;
        var disk = new MemoryBlockDevice(1 << 20);
        byte[] old = TestPatterns.Bytes(12, sectors * Sector);
        await disk.WriteAsync(0, old);
        await using var device = new FaultyBlockDevice(disk, volatileCache: true) { TearOnFlush = 1, TearSeed = 5 };
        byte[] fresh = TestPatterns.Bytes(13, sectors * Sector);
        for (int part = 0; part < 4; part++)
        {
            int at = part * sectors / 4 * Sector;
            await device.WriteAsync(at, fresh.AsMemory(at, sectors / 4 * Sector));
        }

        await Assert.ThrowsAsync<IOException>(() => device.FlushAsync().AsTask());

        Assert.True(device.IsCrashed);
        await Assert.ThrowsAsync<IOException>(() => device.ReadAsync(0, new byte[Sector]).AsTask());
        await Assert.ThrowsAsync<IOException>(() => device.WriteAsync(0, new byte[Sector]).AsTask());
        byte[] surface = await disk.ReadBytesAsync(0, sectors * Sector);
        int kept = 0;
        int lost = 0;
        for (int sector = 0; sector < sectors; sector++)
        {
            Range range = (sector * Sector)..((sector + 1) * Sector);
            bool isNew = surface.AsSpan(range).SequenceEqual(fresh.AsSpan(range));
            Assert.True(isNew || surface.AsSpan(range).SequenceEqual(old.AsSpan(range)), $"Sector {sector} is neither old nor new.");
            kept += isNew ? 1 : 0;
            lost += isNew ? 0 : 1;
        }

        Assert.True(kept > 0 && lost > 0, $"A torn flush of {sectors} sectors kept {kept} and lost {lost}; expected some of each.");
    }

    [Fact]
    public void Tearing_requires_a_volatile_cache()
    {
        var device = new FaultyBlockDevice(new MemoryBlockDevice(1 << 20));

        Assert.Throws<InvalidOperationException>(() => device.TearOnFlush = 1);
    }

    [Fact]
    public async Task Disposal_applies_cached_writes()
    {
        var disk = new MemoryBlockDevice(1 << 20);
        byte[] data = TestPatterns.Bytes(14, 2 * Sector);
        await using (var device = new FaultyBlockDevice(disk, volatileCache: true, ownsInner: false))
        {
            await device.WriteAsync(4 * Sector, data);
        }

        await DeviceAssert.ContentAsync(disk, 4 * Sector, data, "Inner device after disposal");
    }
}
