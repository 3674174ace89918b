using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Interop;
using BlockDriver.Testing;

namespace BlockDriver.Mount.Tests;

/// <summary>Attach-only use of <see cref="LayerMounter"/> (<see cref="LayerMounter.AttachDeviceAsync"/>,
/// <see cref="LayerMounter.DetachDeviceAsync"/>): a layer as a loop device that someone else mounts.</summary>
[Collection(MountTestCollection.Name)]
public sealed class LayerMounterDeviceTests() : MounterTestBase(withBaseFilesystem: true)
{
    [Fact]
    public async Task An_attached_device_is_mountable_by_others_and_detaching_flushes_what_they_wrote()
    {
        await F.Store.CreateAsync(new LayerSpec { Id = "c1", Parent = BaseFilesystem.LayerId });
        string device = await F.Mounter.AttachDeviceAsync("c1", writable: true);
        Assert.Equal(device, F.Mounter.FindDevice("c1"));
        Assert.Equal([new KeyValuePair<string, string>("c1", device)], F.Mounter.ListDevices());
        Assert.Empty(F.Mounter.List());

        string dir = F.Dir("outside");
        Directory.CreateDirectory(dir);
        await MounterTestStore.Run("mount", "-t", "ext4", device, dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "hello.txt"), "hello");

        // Mounted by someone else: detaching is refused and changes nothing.
        var busy = await Assert.ThrowsAsync<BlockDriverException>(() => F.Mounter.DetachDeviceAsync("c1"));
        Assert.Equal(ErrorKind.InUse, busy.Kind);
        Assert.Equal(device, F.Mounter.FindDevice("c1"));
        Assert.Equal("hello", await File.ReadAllTextAsync(Path.Combine(dir, "hello.txt")));

        await MounterTestStore.Run("umount", dir);
        await F.Mounter.DetachDeviceAsync("c1");
        Assert.Null(F.Mounter.FindDevice("c1"));
        Assert.Empty(LoopDevice.FindByBackingFile(Path.Combine(F.Mounter.FuseDirectory, "c1")));

        // The data reached the layer: seal it and read it through a mount of the sealed layer.
        await F.Store.SealAsync("c1");
        MountInfo mounted = await F.Mounter.MountAsync("c1", F.Dir("check"));
        Assert.True(mounted.ReadOnly);
        Assert.Equal("hello", await File.ReadAllTextAsync(Path.Combine(F.Dir("check"), "hello.txt")));
        await F.Mounter.UnmountAsync(F.Dir("check"));
    }

    [Fact]
    public async Task A_read_only_device_refuses_writes_and_sealed_layers_attach_only_read_only()
    {
        string device = await F.Mounter.AttachDeviceAsync(BaseFilesystem.LayerId, writable: false);
        var readOnly = await Assert.ThrowsAsync<BlockDriverException>(() => F.Mounter.AttachDeviceAsync(BaseFilesystem.LayerId, writable: false));
        Assert.Equal(ErrorKind.InUse, readOnly.Kind);
        await F.Mounter.DetachDeviceAsync(BaseFilesystem.LayerId);

        var sealedLayer = await Assert.ThrowsAsync<BlockDriverException>(() => F.Mounter.AttachDeviceAsync(BaseFilesystem.LayerId, writable: true));
        Assert.Equal(ErrorKind.ReadOnly, sealedLayer.Kind);

        device = await F.Mounter.AttachDeviceAsync(BaseFilesystem.LayerId, writable: false);
        string dir = F.Dir("ro");
        Directory.CreateDirectory(dir);
        await MounterTestStore.Run("mount", "-t", "ext4", "-o", "ro,noload", device, dir);
        try
        {
            Assert.ThrowsAny<IOException>(() => File.WriteAllText(Path.Combine(dir, "x"), "x"));
            ProcessResult rw = await ChildProcess.RunAsync("mount", ["-o", "remount,rw", dir], "/");
            Assert.NotEqual(0, rw.ExitCode);
        }
        finally
        {
            await MounterTestStore.Run("umount", dir);
        }

        await F.Mounter.DetachDeviceAsync(BaseFilesystem.LayerId);
    }

    [Fact]
    public async Task Attaching_twice_mounting_an_attached_layer_and_detaching_an_unknown_one_are_refused()
    {
        await F.Store.CreateAsync(new LayerSpec { Id = "c1", Parent = BaseFilesystem.LayerId });
        await F.Store.CreateAsync(new LayerSpec { Id = "c2", Parent = BaseFilesystem.LayerId });
        await F.Mounter.AttachDeviceAsync("c1", writable: true);
        var twice = await Assert.ThrowsAsync<BlockDriverException>(() => F.Mounter.AttachDeviceAsync("c1", writable: true));
        Assert.Equal(ErrorKind.InUse, twice.Kind);
        await Assert.ThrowsAnyAsync<Exception>(() => F.Mounter.MountAsync("c1", F.Dir("m1")));
        Assert.Empty(F.Mounter.List());

        await F.Mounter.MountAsync("c2", F.Dir("m2"));
        var mounted = await Assert.ThrowsAsync<BlockDriverException>(() => F.Mounter.AttachDeviceAsync("c2", writable: true));
        Assert.Equal(ErrorKind.InUse, mounted.Kind);
        await F.Mounter.UnmountAsync(F.Dir("m2"));

        var unknown = await Assert.ThrowsAsync<BlockDriverException>(() => F.Mounter.DetachDeviceAsync("c2"));
        Assert.Equal(ErrorKind.NotFound, unknown.Kind);
        var missing = await Assert.ThrowsAsync<BlockDriverException>(() => F.Mounter.AttachDeviceAsync("nope", writable: false));
        Assert.Equal(ErrorKind.NotFound, missing.Kind);
        await F.Mounter.DetachDeviceAsync("c1");
    }

    [Fact]
    public async Task Dispose_detaches_attached_devices_and_unmounts_the_fuse_file_system()
    {
        await F.Store.CreateAsync(new LayerSpec { Id = "c1", Parent = BaseFilesystem.LayerId });
        await F.Store.CreateAsync(new LayerSpec { Id = "c2", Parent = BaseFilesystem.LayerId });
        await F.Mounter.AttachDeviceAsync("c1", writable: true);
        await F.Mounter.AttachDeviceAsync("c2", writable: false);
        await F.Mounter.MountAsync(BaseFilesystem.LayerId, F.Dir("base"));
        await F.Mounter.DisposeAsync();
        Assert.DoesNotContain(LoopDevice.ListBound(), b => b.BackingFile.StartsWith(F.Mounter.FuseDirectory + "/", StringComparison.Ordinal));
        Assert.DoesNotContain(MountInfoEntry.ReadAll(), m => m.MountPoint == F.Mounter.FuseDirectory || m.MountPoint == F.Dir("base"));

        // Both layers were closed: they can be removed.
        await F.Store.RemoveAsync("c1");
        await F.Store.RemoveAsync("c2");
    }
}
