using System.Security.Cryptography;
using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Fuse;
using BlockDriver.Interop;

namespace BlockDriver.Mount.Tests;

/// <summary>Reference counting, refusals, read-only mounts of sealed layers and unmount-on-dispose of
/// <see cref="LayerMounter"/>, on a real store with a 256 MiB base file system layer.</summary>
[Collection(MountTestCollection.Name)]
public sealed class LayerMounterTests() : MounterTestBase(withBaseFilesystem: true)
{
    [Fact]
    public async Task Mounting_twice_and_unmounting_once_leaves_the_layer_mounted()
    {
        await F.Store.CreateAsync(new LayerSpec { Id = "c1", Parent = BaseFilesystem.LayerId });
        string dir = F.Dir("c1");
        MountInfo first = await F.Mounter.MountAsync("c1", dir);
        MountInfo second = await F.Mounter.MountAsync("c1", dir);
        Assert.Equal(1, first.References);
        Assert.Equal(2, second.References);
        Assert.Equal(first.LoopDevice, second.LoopDevice);
        Assert.False(second.ReadOnly);
        await File.WriteAllTextAsync(Path.Combine(dir, "kept.txt"), "kept");

        await F.Mounter.UnmountAsync(dir);
        Assert.Contains(MountInfoEntry.ReadAll(), m => m.MountPoint == dir && m.FileSystemType == "ext4");
        Assert.Equal(1, Assert.Single(F.Mounter.List()).References);
        Assert.Equal("kept", await File.ReadAllTextAsync(Path.Combine(dir, "kept.txt")));

        await F.Mounter.UnmountAsync(dir);
        Assert.DoesNotContain(MountInfoEntry.ReadAll(), m => m.MountPoint == dir);
        Assert.Empty(F.Mounter.List());
        Assert.Empty(LoopDevice.FindByBackingFile(first.FuseFile));
        Assert.Equal(1, (await F.Mounter.MountAsync("c1", dir)).References);
        Assert.Equal("kept", await File.ReadAllTextAsync(Path.Combine(dir, "kept.txt")));
        await F.Mounter.UnmountAsync(dir);
    }

    [Fact]
    public async Task A_layer_at_a_second_directory_or_a_directory_that_is_a_mount_point_is_refused_with_InUse()
    {
        await F.Store.CreateAsync(new LayerSpec { Id = "c1", Parent = BaseFilesystem.LayerId });
        await F.Store.CreateAsync(new LayerSpec { Id = "c2", Parent = BaseFilesystem.LayerId });
        await F.Mounter.MountAsync("c1", F.Dir("c1"));

        var elsewhere = await Assert.ThrowsAsync<BlockDriverException>(() => F.Mounter.MountAsync("c1", F.Dir("other")));
        Assert.Equal(ErrorKind.InUse, elsewhere.Kind);
        var taken = await Assert.ThrowsAsync<BlockDriverException>(() => F.Mounter.MountAsync("c2", F.Dir("c1")));
        Assert.Equal(ErrorKind.InUse, taken.Kind);

        string tmpfs = F.Dir("tmpfs");
        Directory.CreateDirectory(tmpfs);
        await MounterTestStore.Run("mount", "-t", "tmpfs", "none", tmpfs);
        try
        {
            var mountPoint = await Assert.ThrowsAsync<BlockDriverException>(() => F.Mounter.MountAsync("c2", tmpfs));
            Assert.Equal(ErrorKind.InUse, mountPoint.Kind);
        }
        finally
        {
            await MounterTestStore.Run("umount", tmpfs);
        }

        var unknown = await Assert.ThrowsAsync<BlockDriverException>(() => F.Mounter.MountAsync("nope", F.Dir("nope")));
        Assert.Equal(ErrorKind.NotFound, unknown.Kind);
        var nothing = await Assert.ThrowsAsync<BlockDriverException>(() => F.Mounter.UnmountAsync(F.Dir("c2")));
        Assert.Equal(ErrorKind.NotFound, nothing.Kind);

        // The refusals changed nothing: c2 mounts now, c1 is still mounted once.
        await F.Mounter.MountAsync("c2", F.Dir("c2"));
        Assert.Equal(["c1", "c2"], F.Mounter.List().Select(m => m.LayerId));
        Assert.All(F.Mounter.List(), m => Assert.Equal(1, m.References));
        await F.Mounter.UnmountAsync(F.Dir("c1"));
        await F.Mounter.UnmountAsync(F.Dir("c2"));
    }

    [Fact]
    public async Task A_sealed_layer_mounts_read_only_and_its_file_does_not_change()
    {
        await F.Store.CreateAsync(new LayerSpec { Id = "img", Parent = BaseFilesystem.LayerId, Kind = LayerKind.Image });
        await LayerContent.ApplyTarAsync(F.Mounter, "img", BlockDriver.Mount.Tests.Tar.TarTestTree.BuildTar(BlockDriver.Mount.Tests.Tar.TarTestTree.File("hello.txt", "hello")));
        Layer sealedLayer = await F.Store.SealAsync("img");
        byte[] before = SHA256.HashData(await File.ReadAllBytesAsync(sealedLayer.Path));

        string dir = F.Dir("img");
        MountInfo info = await F.Mounter.MountAsync("img", dir);
        Assert.True(info.ReadOnly);
        Assert.Equal("hello", await File.ReadAllTextAsync(Path.Combine(dir, "hello.txt")));
        Exception? write = Record.Exception(() => File.WriteAllText(Path.Combine(dir, "new.txt"), "x"));
        Assert.True(write is IOException or UnauthorizedAccessException, $"Writing to a read-only mount: {write}");
        Assert.Contains(MountInfoEntry.ReadAll(), m => m.MountPoint == dir);
        Assert.Contains("ro", (await File.ReadAllLinesAsync("/proc/self/mounts")).Single(l => l.Split(' ')[1] == dir).Split(' ')[3].Split(','));
        await F.Mounter.UnmountAsync(dir);

        Assert.Equal(before, SHA256.HashData(await File.ReadAllBytesAsync(sealedLayer.Path)));
    }

    [Fact]
    public async Task Disposing_the_mounter_unmounts_every_layer_and_the_fuse_mount()
    {
        await F.Store.CreateAsync(new LayerSpec { Id = "c1", Parent = BaseFilesystem.LayerId });
        await F.Store.CreateAsync(new LayerSpec { Id = "c2", Parent = BaseFilesystem.LayerId });
        MountInfo one = await F.Mounter.MountAsync("c1", F.Dir("c1"));
        await F.Mounter.MountAsync("c1", F.Dir("c1"));
        MountInfo two = await F.Mounter.MountAsync("c2", F.Dir("c2"));
        await File.WriteAllTextAsync(Path.Combine(F.Dir("c2"), "flushed.txt"), "flushed on dispose");

        await F.Mounter.DisposeAsync();

        Assert.DoesNotContain(MountInfoEntry.ReadAll(), m => m.MountPoint == F.Dir("c1") || m.MountPoint == F.Dir("c2"));
        Assert.Empty(LoopDevice.FindByBackingFile(one.FuseFile));
        Assert.Empty(LoopDevice.FindByBackingFile(two.FuseFile));
        Assert.Empty(FuseMounts.FindAt(F.Mounter.FuseDirectory));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => F.Mounter.MountAsync("c1", F.Dir("c1")));

        // The layer was flushed and released: a new mounter reads the file back.
        await using var again = new LayerMounter(F.Store);
        await again.MountAsync("c2", F.Dir("c2"));
        Assert.Equal("flushed on dispose", await File.ReadAllTextAsync(Path.Combine(F.Dir("c2"), "flushed.txt")));
        await again.UnmountAsync(F.Dir("c2"));
    }

    [Fact]
    public async Task The_base_filesystem_layer_is_made_once_by_concurrent_callers_and_is_a_sealed_empty_ext4()
    {
        await using MounterTestStore fresh = await MounterTestStore.CreateAsync();
        Layer[] made = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => BaseFilesystem.EnsureAsync(fresh.Store, fresh.Mounter, MounterTestStore.Capacity)));
        Layer first = made[0];
        Assert.All(made, l => Assert.Equal(first.Id, l.Id));
        Assert.Equal(BaseFilesystem.LayerId, Assert.Single(fresh.Store.List()).Id);
        Assert.True(first.IsSealed);
        Assert.Null(first.Parent);
        Assert.Equal(MounterTestStore.Capacity, first.Capacity);
        Assert.Equal(first.Created, (await BaseFilesystem.EnsureAsync(fresh.Store, fresh.Mounter, MounterTestStore.Capacity)).Created);

        var wrongSize = await Assert.ThrowsAsync<BlockDriverException>(() => BaseFilesystem.EnsureAsync(fresh.Store, fresh.Mounter, 2 * MounterTestStore.Capacity));
        Assert.Equal(ErrorKind.InvalidArgument, wrongSize.Kind);

        // Empty, as a layer with no parent must be: not even ext4's lost+found.
        IReadOnlyList<BlockDriver.Mount.Tar.LayerChange> changes = await LayerContent.ChangesAsync(fresh.Mounter, BaseFilesystem.LayerId);
        Assert.Empty(changes);
        Assert.Empty(fresh.Mounter.List());
    }

    [Fact]
    public async Task Content_operations_over_a_shared_parent_share_its_mount_and_leave_nothing_behind()
    {
        // Four children of one sealed image, compared with it all at once, plus a container mounted by someone
        // else: each operation needs the parent mounted, and none may unmount it under another.
        await F.Store.CreateAsync(new LayerSpec { Id = "img", Parent = BaseFilesystem.LayerId, Kind = LayerKind.Image });
        await LayerContent.ApplyTarAsync(F.Mounter, "img", BusyboxLayerTars.SecondLayer());
        await F.Store.SealAsync("img");
        string[] children = ["c0", "c1", "c2", "c3"];
        foreach (string child in children)
        {
            await F.Store.CreateAsync(new LayerSpec { Id = child, Parent = "img" });
        }

        string running = F.Dir("running");
        await F.Mounter.MountAsync("c3", running);
        await File.WriteAllTextAsync(Path.Combine(running, "mine"), "c3");
        for (int round = 0; round < 3; round++)
        {
            IReadOnlyList<BlockDriver.Mount.Tar.LayerChange>[] all = await Task.WhenAll(children.Select(c => LayerContent.ChangesAsync(F.Mounter, c)));
            Assert.All(all.Take(3), changes => Assert.Empty(changes));
            Assert.Contains("A /mine", all[3].Select(c => c.ToString()));
        }

        MountInfo left = Assert.Single(F.Mounter.List());
        Assert.Equal((running, 1), (left.Directory, left.References));
        Assert.Empty(Directory.EnumerateDirectories(F.Store.Paths.Mounts, ".tmp-*"));
        await F.Mounter.UnmountAsync(running);
    }
}
