using System.Diagnostics;
using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Interop;

namespace BlockDriver.Mount.Tests;

/// <summary>The mounter holds its gate for its tables only, never across a kernel call: a slow unmount of one layer
/// does not hold up another layer's mount, and racing mounts, shares and unmounts of one layer settle to the right
/// reference counts with nothing left behind.</summary>
[Collection(MountTestCollection.Name)]
public sealed class LayerMounterConcurrencyTests() : MounterTestBase(withBaseFilesystem: true)
{
    [Fact]
    public async Task A_busy_unmount_of_one_layer_does_not_hold_up_mounting_another()
    {
        await F.Store.CreateAsync(new LayerSpec { Id = "busy", Parent = BaseFilesystem.LayerId });
        await F.Store.CreateAsync(new LayerSpec { Id = "other", Parent = BaseFilesystem.LayerId });
        string busyDir = F.Dir("busy");
        await F.Mounter.MountAsync("busy", busyDir);

        // An open file keeps the file system busy: the unmount retries for about two seconds, then fails with InUse.
        Task unmount;
        var other = Stopwatch.StartNew();
        using (File.Open(Path.Combine(busyDir, "held"), FileMode.Create))
        {
            unmount = F.Mounter.UnmountAsync(busyDir);
            await Task.Delay(200);
            Assert.False(unmount.IsCompleted, "the unmount should still be retrying");
            other.Restart();
            MountInfo mounted = await F.Mounter.MountAsync("other", F.Dir("other"));
            other.Stop();
            Assert.Equal(1, mounted.References);
            Assert.False(unmount.IsCompleted, $"mounting another layer waited for the busy unmount ({other.ElapsedMilliseconds} ms)");
            Assert.Equal(ErrorKind.InUse, (await Assert.ThrowsAsync<BlockDriverException>(() => unmount)).Kind);
        }

        // The failed unmount left the busy layer mounted with its reference; both unmount now.
        Assert.Equal(["busy", "other"], F.Mounter.List().Select(m => m.LayerId).Order(StringComparer.Ordinal));
        await F.Mounter.UnmountAsync(busyDir);
        await F.Mounter.UnmountAsync(F.Dir("other"));
        Assert.Empty(F.Mounter.List());
        Assert.DoesNotContain(MountInfoEntry.ReadAll(), m => m.MountPoint.StartsWith(F.Root, StringComparison.Ordinal) && m.FileSystemType == "ext4");
    }

    [Fact]
    public async Task Racing_mounts_shares_and_unmounts_settle_to_the_right_references()
    {
        string[] ids = ["r0", "r1", "r2", "r3"];
        foreach (string id in ids)
        {
            await F.Store.CreateAsync(new LayerSpec { Id = id, Parent = BaseFilesystem.LayerId });
        }

        for (int round = 0; round < 3; round++)
        {
            // Every layer mounted by three callers at once at its own directory, and shared by three more from
            // temporary directories: one mount each, six references.
            Task<MountInfo>[] mounts = [.. ids.SelectMany(id => Enumerable.Range(0, 3).Select(_ => F.Mounter.MountAsync(id, F.Dir(id))))
                .Concat(ids.SelectMany(id => Enumerable.Range(0, 3).Select(i => F.Mounter.MountOrShareAsync(id, F.Dir($"{id}-tmp{i}"), readOnly: true))))];
            MountInfo[] infos = await Task.WhenAll(mounts);
            Assert.All(infos, m => Assert.Equal(F.Dir(m.LayerId), m.Directory));
            Assert.All(F.Mounter.List(), m => Assert.Equal(6, m.References));
            Assert.Equal(ids.Length, F.Mounter.List().Count);

            // All references dropped at once: each layer unmounted exactly once, the last drop doing it.
            await Task.WhenAll(ids.SelectMany(id => Enumerable.Range(0, 6).Select(_ => F.Mounter.UnmountAsync(F.Dir(id)))));
            Assert.Empty(F.Mounter.List());
            Assert.DoesNotContain(MountInfoEntry.ReadAll(), m => m.MountPoint.StartsWith(F.Root, StringComparison.Ordinal) && m.FileSystemType == "ext4");
            Assert.All(ids, id => Assert.Empty(LoopDevice.FindByBackingFile(Path.Combine(F.Mounter.FuseDirectory, id))));
        }

        // A mount racing the last unmount of the same directory: whichever comes second sees the first settled.
        await F.Mounter.MountAsync("r0", F.Dir("r0"));
        await Task.WhenAll(F.Mounter.UnmountAsync(F.Dir("r0")), F.Mounter.MountAsync("r0", F.Dir("r0")));
        MountInfo? left = F.Mounter.Find("r0");
        if (left is not null)
        {
            Assert.Equal(1, left.References);
            await F.Mounter.UnmountAsync(F.Dir("r0"));
        }

        Assert.Empty(F.Mounter.List());
    }
}
