using BlockDriver.Fuse;
using BlockDriver.Interop;
using BlockDriver.Testing;
using BlockDriver.Vhdx;

namespace BlockDriver.Mount.Tests;

/// <summary>The whole chain with the real tools: a VHDX served as a FUSE file, a loop device on it, ext4 from
/// mkfs.ext4 on that, mounted, written, unmounted, detached, reopened; fstrim frees the VHDX's storage.</summary>
[Collection(MountTestCollection.Name)]
public sealed class FuseLoopExt4Tests : IAsyncLifetime
{
    private const int Mib = 1 << 20;
    private readonly TempDirectory _temp = new(MountTestCollection.TempPrefix);
    private readonly string _vhdx;
    private readonly string _fuseDirectory;
    private readonly string _fsDirectory;
    private VhdxDisk? _disk;
    private FuseDeviceServer? _server;
    private LoopDevice? _loop;
    private bool _fsMounted;

    public FuseLoopExt4Tests()
    {
        _vhdx = _temp.GetFilePath("disk.vhdx");
        _fuseDirectory = _temp.GetFilePath("fuse");
        _fsDirectory = _temp.GetFilePath("fs");
        Directory.CreateDirectory(_fuseDirectory);
        Directory.CreateDirectory(_fsDirectory);
    }

    private LoopDevice Loop => _loop ?? throw new InvalidOperationException("Not attached.");

    public Task InitializeAsync() => Task.CompletedTask;

    // Undoes whatever a failed test left, innermost first, and reports every failure at the end.
    public async Task DisposeAsync()
    {
        var failures = new List<Exception>();
        async Task Step(Func<Task> step)
        {
            try
            {
                await step();
            }
            catch (Exception ex)
            {
                failures.Add(ex);
            }
        }

        await Step(async () =>
        {
            if (MountInfoEntry.ReadAll().Any(e => e.MountPoint == _fsDirectory))
            {
                await RunAsync("umount", "-l", _fsDirectory);
            }
        });
        await Step(() =>
        {
            _loop?.Detach();
            foreach (string device in LoopDevice.FindByBackingFile(Path.Combine(_fuseDirectory, "disk")))
            {
                LoopDevice.DetachDevice(device, TimeSpan.FromSeconds(10));
            }

            return Task.CompletedTask;
        });
        await Step(async () =>
        {
            if (_server is not null)
            {
                await _server.DisposeAsync();
            }
        });
        await Step(async () =>
        {
            if (_disk is not null)
            {
                await _disk.DisposeAsync();
            }
        });
        await Step(async () =>
        {
            if (FuseMounts.FindAt(_fuseDirectory).Count > 0)
            {
                await RunAsync("umount", "-l", _fuseDirectory);
            }
        });
        _temp.Dispose();
        if (failures.Count > 0)
        {
            throw new AggregateException("Cleaning up the ext4-on-FUSE test failed.", failures);
        }
    }

    [Fact]
    public async Task Ext4_on_a_loop_device_over_a_served_vhdx_survives_remount_and_fstrim_frees_vhdx_storage()
    {
        VhdxFile.CreateDynamic(_vhdx, 256L * Mib, new VhdxCreateOptions { BlockSize = Mib });
        await OpenAsync();
        Assert.True(Loop.DirectIo, "The loop device does not do direct I/O to the FUSE file.");
        Assert.Equal("4096", (await File.ReadAllTextAsync($"/sys/block/loop{Loop.Index}/queue/discard_granularity")).Trim());

        // mkfs discards the whole device first (BLKDISCARD → FALLOCATE punch hole); no lazy init keeps writing later.
        await RunAsync("mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", Loop.Path);
        await MountFsAsync();
        var files = new Dictionary<string, byte[]>();
        for (int i = 0; i < 12; i++)
        {
            files[$"big{i}.bin"] = TestPatterns.Bytes(100 + i, 3 * Mib);
        }

        files["hello.txt"] = "hello, ext4 on loop on FUSE on VHDX\n"u8.ToArray();
        foreach ((string name, byte[] content) in files)
        {
            await File.WriteAllBytesAsync(Path.Combine(_fsDirectory, name), content);
        }

        await RunAsync("sync");
        await CloseAsync();
        long allocatedWithFiles = SparseFile.AllocatedBytes(_vhdx);

        await OpenAsync();
        await MountFsAsync();
        foreach ((string name, byte[] content) in files)
        {
            Assert.Equal(content, await File.ReadAllBytesAsync(Path.Combine(_fsDirectory, name)));
        }

        foreach (string name in files.Keys.Where(n => n.StartsWith("big", StringComparison.Ordinal)))
        {
            File.Delete(Path.Combine(_fsDirectory, name));
        }

        await RunAsync("sync");
        await RunAsync("fstrim", _fsDirectory);
        await RunAsync("sync");
        long allocatedAfterTrim = SparseFile.AllocatedBytes(_vhdx);
        Assert.True(allocatedAfterTrim < allocatedWithFiles - (24L * Mib),
            $"fstrim freed too little of the VHDX: {allocatedWithFiles} bytes allocated before, {allocatedAfterTrim} after deleting 36 MiB.");
        Assert.Equal(files["hello.txt"], await File.ReadAllBytesAsync(Path.Combine(_fsDirectory, "hello.txt")));
        await CloseAsync();

        // A last pass: the file system is clean after all of it.
        await OpenAsync();
        await RunAsync("e2fsck", "-f", "-n", Loop.Path);
        await CloseAsync();
        Assert.Empty(LoopDevice.FindByBackingFile(Path.Combine(_fuseDirectory, "disk")));
        Assert.Empty(FuseMounts.FindAt(_fuseDirectory));
    }

    private static async Task RunAsync(string program, params string[] args)
    {
        ProcessResult result = await ChildProcess.RunAsync(program, args, "/");
        Assert.True(result.ExitCode == 0, $"{program} {string.Join(' ', args)}: {result}");
    }

    private async Task OpenAsync()
    {
        _disk = VhdxDisk.Open(_vhdx);
        _server = await FuseDeviceServer.MountAsync(_fuseDirectory);
        _server.AddFile("disk", _disk);
        _loop = LoopDevice.Attach(_server.GetFilePath("disk"));
    }

    private async Task MountFsAsync()
    {
        await RunAsync("mount", "-t", "ext4", Loop.Path, _fsDirectory);
        _fsMounted = true;
    }

    // The normal teardown order: file system, loop device, FUSE file, FUSE mount, VHDX.
    private async Task CloseAsync()
    {
        if (_fsMounted)
        {
            await RunAsync("umount", _fsDirectory);
            _fsMounted = false;
        }

        Loop.Detach();
        _loop = null;
        await _server!.RemoveFileAsync("disk", TimeSpan.FromSeconds(10));
        await _server.DisposeAsync();
        _server = null;
        await _disk!.DisposeAsync();
        _disk = null;
    }
}
