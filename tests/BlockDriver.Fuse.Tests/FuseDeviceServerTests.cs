using System.Runtime.InteropServices;
using BlockDriver.Abstractions;
using BlockDriver.Interop;
using BlockDriver.Testing;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Fuse.Tests;

/// <summary>What the kernel makes of system calls on a served file, checked on the device behind it.</summary>
[Collection(FuseTestCollection.Name)]
public sealed class FuseDeviceServerTests : IAsyncLifetime
{
    private const int Mib = 1 << 20;
    private readonly List<IBlockDevice> _devices = [];
    private MountedServer? _mounted;

    private MountedServer Mounted => _mounted ?? throw new InvalidOperationException("Not mounted.");

    public async Task InitializeAsync() => _mounted = await MountedServer.StartAsync();

    public async Task DisposeAsync()
    {
        try
        {
            if (_mounted is not null)
            {
                await _mounted.DisposeAsync();
            }
        }
        finally
        {
            foreach (IBlockDevice device in _devices)
            {
                await device.DisposeAsync();
            }
        }
    }

    [Fact]
    public void Files_appear_in_the_directory_with_the_device_size()
    {
        Add("a", new MemoryBlockDevice(3 * Mib));
        Add("b", new MemoryBlockDevice(8 * Mib, 4096));

        Assert.Equal(["a", "b"], Directory.GetFiles(Mounted.MountPoint).Select(Path.GetFileName).Order());
        Assert.Equal(3 * Mib, new FileInfo(Mounted.PathOf("a")).Length);
        Assert.Equal(8 * Mib, new FileInfo(Mounted.PathOf("b")).Length);
        Assert.Equal(["a", "b"], Mounted.Server.FileNames);
    }

    [Fact]
    public async Task A_removed_file_disappears_from_lookups_and_listings()
    {
        Add("gone", new MemoryBlockDevice(Mib));
        Add("kept", new MemoryBlockDevice(Mib));
        Assert.True(File.Exists(Mounted.PathOf("gone")));

        await Mounted.Server.RemoveFileAsync("gone");

        Assert.False(File.Exists(Mounted.PathOf("gone")));
        Assert.Equal(["kept"], Directory.GetFiles(Mounted.MountPoint).Select(Path.GetFileName));
        await Assert.ThrowsAsync<BlockDriverException>(() => Mounted.Server.RemoveFileAsync("gone"));
    }

    [Fact]
    public async Task Reads_past_the_end_are_short_and_reads_at_the_end_return_nothing()
    {
        var device = (MemoryBlockDevice)Add("disk", new MemoryBlockDevice(Mib));
        byte[] tail = TestPatterns.Bytes(1, 4096);
        await device.WriteAsync(Mib - 4096, tail);
        using SafeFileHandle file = File.OpenHandle(Mounted.PathOf("disk"));

        byte[] buffer = new byte[3 * 4096];
        int read = RandomAccess.Read(file, buffer, Mib - 4096);

        Assert.Equal(4096, read);
        Assert.Equal(tail, buffer.AsSpan(0, 4096).ToArray());
        Assert.Equal(0, RandomAccess.Read(file, buffer, Mib));
        Assert.Equal(0, RandomAccess.Read(file, buffer, 5 * Mib));
    }

    [Fact]
    public async Task A_write_at_the_end_fails_with_no_space_and_one_across_the_end_stops_there()
    {
        var device = (MemoryBlockDevice)Add("disk", new MemoryBlockDevice(Mib));
        using SafeFileHandle file = File.OpenHandle(Mounted.PathOf("disk"), FileMode.Open, FileAccess.ReadWrite);

        IOException atEnd = Assert.Throws<IOException>(() => RandomAccess.Write(file, new byte[4096], Mib));
        Assert.Contains("No space left", atEnd.Message, StringComparison.Ordinal);

        // RandomAccess.Write retries the remainder after a short write, which then starts at the end.
        byte[] data = TestPatterns.Bytes(2, 8192);
        Assert.Throws<IOException>(() => RandomAccess.Write(file, data, Mib - 4096));
        await DeviceAssert.ContentAsync(device, Mib - 4096, data[..4096], "The part of the write before the end");
        Assert.Equal(Mib, new FileInfo(Mounted.PathOf("disk")).Length);
    }

    [Fact]
    public async Task Unaligned_writes_and_reads_read_modify_write_whole_sectors()
    {
        var device = (MemoryBlockDevice)Add("disk", new MemoryBlockDevice(Mib));
        byte[] around = TestPatterns.Bytes(3, 2048);
        await device.WriteAsync(0, around);
        using SafeFileHandle file = File.OpenHandle(Mounted.PathOf("disk"), FileMode.Open, FileAccess.ReadWrite);

        RandomAccess.Write(file, "hello"u8, 1000);
        byte[] read = new byte[7];
        Assert.Equal(7, RandomAccess.Read(file, read, 999));

        "hello"u8.CopyTo(around.AsSpan(1000));
        await DeviceAssert.ContentAsync(device, 0, around, "Sectors around an unaligned write");
        Assert.Equal(around.AsSpan(999, 7).ToArray(), read);
    }

    [Fact]
    public void Fsync_reaches_the_device_flush()
    {
        var device = (RecordingBlockDevice)Add("disk", new RecordingBlockDevice(new MemoryBlockDevice(Mib)));
        using SafeFileHandle file = File.OpenHandle(Mounted.PathOf("disk"), FileMode.Open, FileAccess.ReadWrite);
        RandomAccess.Write(file, new byte[4096], 0);
        int before = device.Flushes;

        RandomAccess.FlushToDisk(file);

        Assert.True(device.Flushes > before, "fsync(2) on the file did not reach FlushAsync.");
    }

    [Fact]
    public async Task Punch_hole_makes_the_range_read_zeroes_through_write_zeroes()
    {
        var device = (RecordingBlockDevice)Add("disk", new RecordingBlockDevice(new MemoryBlockDevice(4 * Mib)));
        await device.WriteAsync(0, TestPatterns.Bytes(4, 4 * Mib));
        using SafeFileHandle file = File.OpenHandle(Mounted.PathOf("disk"), FileMode.Open, FileAccess.ReadWrite);

        Assert.Equal(0, TestNative.Fallocate(file, TestNative.FallocPunchHole | TestNative.FallocKeepSize, Mib, 2 * Mib));

        Assert.Contains(("WriteZeroes", (long)Mib, 2L * Mib), device.Calls);
        await DeviceAssert.ZeroesAsync(device, Mib, 2 * Mib, "Punched range");
        await DeviceAssert.ContentAsync(device, 0, TestPatterns.Bytes(4, Mib), "Before the hole");
        Assert.Equal(4 * Mib, new FileInfo(Mounted.PathOf("disk")).Length);
    }

    [Fact]
    public async Task Zero_range_and_unaligned_punch_hole_zero_exactly_their_bytes()
    {
        var device = (RecordingBlockDevice)Add("disk", new RecordingBlockDevice(new MemoryBlockDevice(Mib)));
        byte[] expected = TestPatterns.Bytes(5, Mib);
        await device.WriteAsync(0, expected);
        using SafeFileHandle file = File.OpenHandle(Mounted.PathOf("disk"), FileMode.Open, FileAccess.ReadWrite);

        Assert.Equal(0, TestNative.Fallocate(file, TestNative.FallocZeroRange | TestNative.FallocKeepSize, 65536, 65536));
        Assert.Equal(0, TestNative.Fallocate(file, TestNative.FallocPunchHole | TestNative.FallocKeepSize, 300_001, 5000));

        Array.Clear(expected, 65536, 65536);
        Array.Clear(expected, 300_001, 5000);
        await DeviceAssert.ContentAsync(device, 0, expected, "After zero-range and an unaligned punch");
        Assert.Contains(("WriteZeroes", 65536L, 65536L), device.Calls);
    }

    [Fact]
    public void Plain_allocation_and_growing_are_refused()
    {
        Add("disk", new MemoryBlockDevice(Mib));
        using SafeFileHandle file = File.OpenHandle(Mounted.PathOf("disk"), FileMode.Open, FileAccess.ReadWrite);

        Assert.Equal(95, TestNative.Fallocate(file, 0, 0, 4096)); // EOPNOTSUPP
        Assert.Equal(27, TestNative.Fallocate(file, TestNative.FallocZeroRange, Mib - 4096, 8192)); // EFBIG
        Assert.Throws<IOException>(() => RandomAccess.SetLength(file, 2 * Mib));
        Assert.Throws<IOException>(() => RandomAccess.SetLength(file, 4096));
        Assert.Equal(Mib, new FileInfo(Mounted.PathOf("disk")).Length);
    }

    [Fact]
    public void A_read_only_device_refuses_opening_for_write()
    {
        Add("ro", new MemoryBlockDevice(Mib, isReadOnly: true));

        IOException refused = Assert.Throws<IOException>(() => File.OpenHandle(Mounted.PathOf("ro"), FileMode.Open, FileAccess.ReadWrite).Dispose());
        Assert.Contains("Read-only", refused.Message, StringComparison.Ordinal);
        using SafeFileHandle reader = File.OpenHandle(Mounted.PathOf("ro"));
        Assert.Equal(4096, RandomAccess.Read(reader, new byte[4096], 0));
    }

    [Fact]
    public async Task Removing_an_open_file_is_refused_until_it_is_closed()
    {
        Add("disk", new MemoryBlockDevice(Mib));
        SafeFileHandle file = File.OpenHandle(Mounted.PathOf("disk"));
        try
        {
            BlockDriverException refused = await Assert.ThrowsAsync<BlockDriverException>(
                () => Mounted.Server.RemoveFileAsync("disk", TimeSpan.FromMilliseconds(200)));

            Assert.Equal(ErrorKind.InUse, refused.Kind);
            Assert.Contains("disk", Mounted.Server.FileNames);
            Assert.Equal(4096, RandomAccess.Read(file, new byte[4096], 0));
        }
        finally
        {
            file.Dispose();
        }

        // The kernel sends RELEASE after close(2) returns: allow it a moment.
        await Mounted.Server.RemoveFileAsync("disk", TimeSpan.FromSeconds(5));
        Assert.Empty(Mounted.Server.FileNames);
    }

    [Fact]
    public void Duplicate_and_invalid_names_are_refused()
    {
        Add("disk", new MemoryBlockDevice(Mib));

        Assert.Equal(ErrorKind.AlreadyExists,
            Assert.Throws<BlockDriverException>(() => Mounted.Server.AddFile("disk", new MemoryBlockDevice(Mib))).Kind);
        foreach (string name in new[] { "", ".", "..", "a/b", "nul\0", new string('x', 256) })
        {
            Assert.Throws<ArgumentException>(() => Mounted.Server.AddFile(name, new MemoryBlockDevice(Mib)));
        }

        Assert.Equal(["disk"], Mounted.Server.FileNames);
    }

    [Fact]
    public void Creating_or_deleting_files_in_the_mount_is_refused()
    {
        Add("disk", new MemoryBlockDevice(Mib));

        Assert.ThrowsAny<Exception>(() => File.WriteAllText(Path.Combine(Mounted.MountPoint, "new"), "x"));
        Assert.ThrowsAny<Exception>(() => File.Delete(Mounted.PathOf("disk")));
        Assert.ThrowsAny<Exception>(() => Directory.CreateDirectory(Path.Combine(Mounted.MountPoint, "dir")));
        Assert.Equal(["disk"], Directory.GetFiles(Mounted.MountPoint).Select(Path.GetFileName));
    }

    [Fact]
    public unsafe void One_megabyte_writes_arrive_as_single_requests()
    {
        var device = (RecordingBlockDevice)Add("disk", new RecordingBlockDevice(new MemoryBlockDevice(4 * Mib)));
        using SafeFileHandle file = File.OpenHandle(Mounted.PathOf("disk"), FileMode.Open, FileAccess.ReadWrite);

        // Page-aligned, so the kernel can pin the buffer as exactly 256 pages (max_pages).
        void* buffer = NativeMemory.AlignedAlloc(Mib, 4096);
        try
        {
            var span = new Span<byte>(buffer, Mib);
            TestPatterns.Fill(span, 6);
            RandomAccess.Write(file, span, Mib);
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }

        Assert.Equal(Mib, Mounted.Server.MaxWrite);
        Assert.Equal(Mib, device.LargestWrite);
    }

    [Fact]
    public async Task Concurrent_writers_and_readers_through_the_kernel_keep_their_data()
    {
        const int tasks = 8;
        const int region = 2 * Mib;
        var device = (MemoryBlockDevice)Add("disk", new MemoryBlockDevice(tasks * region));
        using SafeFileHandle file = File.OpenHandle(Mounted.PathOf("disk"), FileMode.Open, FileAccess.ReadWrite);

        byte[][] models = await Task.WhenAll(Enumerable.Range(0, tasks).Select(task => Task.Run(() =>
        {
            var rng = new Random(100 + task);
            byte[] model = new byte[region];
            for (int i = 0; i < 60; i++)
            {
                int length = 4096 << rng.Next(0, 9);
                int at = rng.Next(0, (region - length) / 4096 + 1) * 4096;
                byte[] data = TestPatterns.Bytes(rng.Next(), length);
                RandomAccess.Write(file, data, ((long)task * region) + at);
                data.CopyTo(model, at);

                int readAt = rng.Next(0, region / 4096) * 4096;
                int readLength = Math.Min(region - readAt, 4096 << rng.Next(0, 8));
                byte[] read = new byte[readLength];
                Assert.Equal(readLength, RandomAccess.Read(file, read, ((long)task * region) + readAt));
                DeviceAssert.Bytes(model.AsSpan(readAt, readLength), read, readAt, 4096, $"Task {task}, iteration {i}");
            }

            return model;
        })));

        for (int task = 0; task < tasks; task++)
        {
            await DeviceAssert.ContentAsync(device, (long)task * region, models[task], $"Region of task {task} on the device");
        }
    }

    [Fact]
    public void Device_failures_reach_the_caller_as_io_errors()
    {
        var device = new FaultyBlockDevice(new MemoryBlockDevice(Mib)) { FailAfterWrites = 0 };
        Add("disk", device);
        using SafeFileHandle file = File.OpenHandle(Mounted.PathOf("disk"), FileMode.Open, FileAccess.ReadWrite);

        IOException failed = Assert.Throws<IOException>(() => RandomAccess.Write(file, new byte[4096], 0));

        Assert.Contains("Input/output error", failed.Message, StringComparison.Ordinal);
        Assert.Equal(4096, RandomAccess.Read(file, new byte[4096], 0));
    }

    [Fact]
    public async Task Seek_data_and_seek_hole_follow_the_device_map()
    {
        var device = (MemoryBlockDevice)Add("disk", new MemoryBlockDevice(4 * Mib));
        // MemoryBlockDevice allocates 64 KiB chunks: data is [1 MiB, 1 MiB + 64 KiB).
        await device.WriteAsync(Mib, TestPatterns.Bytes(7, 4096));
        using SafeFileHandle file = File.OpenHandle(Mounted.PathOf("disk"));

        Assert.Equal(Mib, SparseFile.NextData(file, 0));
        Assert.Equal(Mib + 65536, SparseFile.NextHole(file, Mib));
        Assert.Equal(Mib + 100, SparseFile.NextData(file, Mib + 100));
        Assert.Equal(-1, SparseFile.NextData(file, 2 * Mib));
        Assert.Equal(0, SparseFile.NextHole(file, 0));
    }

    private IBlockDevice Add(string name, IBlockDevice device)
    {
        _devices.Add(device);
        Mounted.Server.AddFile(name, device);
        return device;
    }
}
