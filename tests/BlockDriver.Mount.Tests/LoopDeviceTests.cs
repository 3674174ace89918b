using BlockDriver.Abstractions;
using BlockDriver.Testing;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Mount.Tests;

/// <summary>Loop devices on plain files: attach, what the kernel reports, read-only, detach, lookup by backing file.</summary>
[Collection(MountTestCollection.Name)]
public sealed class LoopDeviceTests : IDisposable
{
    private const int Mib = 1 << 20;
    private readonly TempDirectory _temp = new(MountTestCollection.TempPrefix);
    private readonly List<LoopDevice> _devices = [];

    public void Dispose()
    {
        try
        {
            foreach (LoopDevice device in _devices)
            {
                device.Dispose();
            }
        }
        finally
        {
            _temp.Dispose();
        }
    }

    [Fact]
    public async Task Attach_binds_a_device_with_4096_byte_blocks_and_direct_io_that_reads_and_writes_the_file()
    {
        string file = CreateFile("disk.raw", 8 * Mib);
        byte[] data = TestPatterns.Bytes(1, 64 * 1024);
        using (SafeFileHandle handle = File.OpenHandle(file, FileMode.Open, FileAccess.Write))
        {
            await RandomAccess.WriteAsync(handle, data, Mib);
        }

        LoopDevice loop = Track(LoopDevice.Attach(file));

        Assert.Equal(file, loop.BackingFile);
        Assert.True(loop.DirectIo);
        Assert.Equal("4096", Sysfs(loop, "queue/logical_block_size"));
        Assert.Equal("1", Sysfs(loop, "loop/autoclear"));
        Assert.Equal((8L * Mib / 512).ToString(System.Globalization.CultureInfo.InvariantCulture), Sysfs(loop, "size"));
        Assert.Equal([loop.Path], LoopDevice.FindByBackingFile(file));

        using SafeFileHandle device = File.OpenHandle(loop.Path, FileMode.Open, FileAccess.ReadWrite);
        byte[] read = new byte[data.Length];
        Assert.Equal(read.Length, RandomAccess.Read(device, read, Mib));
        Assert.Equal(data, read);
        byte[] written = TestPatterns.Bytes(2, 4096);
        RandomAccess.Write(device, written, 4 * Mib);
        RandomAccess.FlushToDisk(device);
        device.Dispose();

        loop.Detach();
        using SafeFileHandle raw = File.OpenHandle(file);
        byte[] back = new byte[4096];
        RandomAccess.Read(raw, back, 4 * Mib);
        Assert.Equal(written, back);
    }

    [Fact]
    public void Detach_unbinds_and_is_idempotent()
    {
        string file = CreateFile("disk.raw", 4 * Mib);
        LoopDevice loop = Track(LoopDevice.Attach(file));
        int index = loop.Index;

        loop.Detach();
        loop.Detach();

        Assert.False(loop.IsAttached);
        Assert.Empty(LoopDevice.FindByBackingFile(file));
        Assert.False(File.Exists($"/sys/block/loop{index}/loop/backing_file"));
    }

    [Fact]
    public void A_read_only_device_refuses_writes()
    {
        string file = CreateFile("disk.raw", 4 * Mib);
        LoopDevice loop = Track(LoopDevice.Attach(file, new LoopOptions { ReadOnly = true }));

        Assert.Equal("1", Sysfs(loop, "ro"));
        Assert.ThrowsAny<UnauthorizedAccessException>(() =>
        {
            using SafeFileHandle device = File.OpenHandle(loop.Path, FileMode.Open, FileAccess.ReadWrite);
            RandomAccess.Write(device, new byte[4096], 0);
        });
    }

    [Fact]
    public async Task Devices_left_by_another_process_are_found_and_detached_by_path()
    {
        string file = CreateFile("disk.raw", 4 * Mib);
        LoopDevice ours = Track(LoopDevice.Attach(file, new LoopOptions { ReadOnly = true }));
        // losetup leaves a device bound with no process holding it, as a crashed attacher would.
        ProcessResult leaked = await ChildProcess.RunAsync("losetup", ["--find", "--show", "--read-only", file], "/");
        Assert.True(leaked.ExitCode == 0, leaked.ToString());
        string leakedPath = leaked.Stdout.Trim();
        try
        {
            Assert.Equal(new[] { ours.Path, leakedPath }.Order(), LoopDevice.FindByBackingFile(file).Order());

            LoopDevice.DetachDevice(leakedPath, TimeSpan.FromSeconds(10));

            Assert.Equal([ours.Path], LoopDevice.FindByBackingFile(file));
        }
        finally
        {
            if (LoopDevice.FindByBackingFile(file).Contains(leakedPath))
            {
                await ChildProcess.RunAsync("losetup", ["--detach", leakedPath], "/");
            }
        }
    }

    [Fact]
    public void Detaching_a_device_another_opener_holds_times_out_with_in_use_and_it_unbinds_when_that_closes()
    {
        string file = CreateFile("disk.raw", 4 * Mib);
        LoopDevice loop = Track(LoopDevice.Attach(file, new LoopOptions { DetachTimeout = TimeSpan.FromMilliseconds(300) }));
        SafeFileHandle holder = File.OpenHandle(loop.Path);
        try
        {
            BlockDriverException refused = Assert.Throws<BlockDriverException>(loop.Detach);
            Assert.Equal(ErrorKind.InUse, refused.Kind);
        }
        finally
        {
            holder.Dispose();
        }

        // Autoclear: the last close unbinds it.
        for (int i = 0; i < 500 && LoopDevice.FindByBackingFile(file).Count > 0; i++)
        {
            Thread.Sleep(10);
        }

        Assert.Empty(LoopDevice.FindByBackingFile(file));
    }

    [Fact]
    public void Bad_requests_are_refused_and_bind_nothing()
    {
        string file = CreateFile("disk.raw", 4 * Mib);

        Assert.Equal(ErrorKind.NotFound, Assert.Throws<BlockDriverException>(() => LoopDevice.Attach(_temp.GetFilePath("missing"))).Kind);
        Assert.Throws<ArgumentOutOfRangeException>(() => LoopDevice.Attach(file, new LoopOptions { LogicalBlockSize = 1000 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => LoopDevice.Attach(file, new LoopOptions { LogicalBlockSize = 8192 }));
        Assert.Throws<ArgumentException>(() => LoopDevice.DetachDevice("/dev/sda", TimeSpan.Zero));
        Assert.Empty(LoopDevice.FindByBackingFile(file));
    }

    private static string Sysfs(LoopDevice loop, string attribute) =>
        File.ReadAllText($"/sys/block/loop{loop.Index}/{attribute}").Trim();

    private string CreateFile(string name, long length)
    {
        string path = _temp.GetFilePath(name);
        using FileStream stream = File.Create(path);
        stream.SetLength(length);
        return path;
    }

    private LoopDevice Track(LoopDevice device)
    {
        _devices.Add(device);
        return device;
    }
}
