using System.Diagnostics;
using System.Formats.Tar;
using BlockDriver.Core;
using BlockDriver.Interop;
using BlockDriver.Mount.Tar;
using BlockDriver.Testing;
using Xunit.Abstractions;

namespace BlockDriver.Mount.Tests;

/// <summary>The issue's end-to-end scenario with the real kernel pieces: base file system layer → image layers from
/// a busybox rootfs tar and a tar with whiteouts → two containers mounted side by side → remount → diff → removal;
/// and fstrim in a container shrinking its layer.</summary>
[Collection(MountTestCollection.Name)]
public sealed class LayerMounterEndToEndTests(ITestOutputHelper output) : MounterTestBase(withBaseFilesystem: false)
{
    private const int Mib = 1 << 20;

    [Fact]
    public async Task Busybox_image_with_two_containers_isolates_persists_diffs_and_frees_space()
    {
        Assert.True(File.Exists(BusyboxLayerTars.Busybox), "/bin/busybox is missing: install Debian's busybox-static.");
        Assert.Null(F.Store.Find(BaseFilesystem.LayerId));
        var clock = Stopwatch.StartNew();
        Layer baseFs = await BaseFilesystem.EnsureAsync(F.Store, F.Mounter, MounterTestStore.Capacity);
        output.WriteLine($"base fs: mkfs.ext4 and seal of {MounterTestStore.Capacity / Mib} MiB in {clock.ElapsedMilliseconds} ms; layer size {F.Store.GetUsage(baseFs.Id).Size / 1024} KiB");

        // Image layers: busybox rootfs, then the whiteout layer; each sealed.
        await F.Store.CreateAsync(new LayerSpec { Id = "img1", Parent = baseFs.Id, Kind = LayerKind.Image });
        await LayerContent.ApplyTarAsync(F.Mounter, "img1", BusyboxLayerTars.Rootfs());
        await F.Store.SealAsync("img1");
        await F.Store.CreateAsync(new LayerSpec { Id = "img2", Parent = "img1", Kind = LayerKind.Image });
        await LayerContent.ApplyTarAsync(F.Mounter, "img2", BusyboxLayerTars.SecondLayer());
        await F.Store.SealAsync("img2");
        // The tar gives /bin and /etc their old modification time back, so they do not show as modified.
        Assert.Equal(
            ["A /etc/hostname", "A /srv", "A /srv/app.txt", "D /bin/cat", "D /bin/ls", "D /etc/group", "D /etc/motd", "D /etc/passwd"],
            (await LayerContent.ChangesAsync(F.Mounter, "img2")).Select(c => c.ToString()).Order(StringComparer.Ordinal));
        Assert.Empty(F.Mounter.List());
        long imagesSize = F.LayerFilesSize();

        // Two containers on the image, mounted side by side, each writing its own files.
        await F.Store.CreateAsync(new LayerSpec { Id = "c1", Parent = "img2" });
        await F.Store.CreateAsync(new LayerSpec { Id = "c2", Parent = "img2" });
        string c1 = F.Dir("c1"), c2 = F.Dir("c2");
        clock.Restart();
        await F.Mounter.MountAsync("c1", c1);
        output.WriteLine($"mount (FUSE file + loop + ext4 rw): {clock.ElapsedMilliseconds} ms");
        await F.Mounter.MountAsync("c2", c2);
        Assert.Equal("the app\n", await File.ReadAllTextAsync(Path.Combine(c1, "srv/app.txt")));
        Assert.False(File.Exists(Path.Combine(c1, "etc/passwd")));
        Assert.False(File.Exists(Path.Combine(c1, "bin/ls")));

        byte[] big = TestPatterns.Bytes(7, 8 * Mib);
        await File.WriteAllBytesAsync(Path.Combine(c1, "c1.bin"), big);
        await File.WriteAllTextAsync(Path.Combine(c1, "etc/c1.conf"), "c1 config\n");
        File.Delete(Path.Combine(c1, "bin/sh"));
        // c2 writes through the image's own busybox: a static binary run in the container's root.
        await MounterTestStore.Run("chroot", c2, "/bin/sh", "-c", "echo c2 was here > /c2.txt");

        Assert.Equal("c2 was here\n", await File.ReadAllTextAsync(Path.Combine(c2, "c2.txt")));
        Assert.False(File.Exists(Path.Combine(c1, "c2.txt")));
        Assert.False(File.Exists(Path.Combine(c2, "c1.bin")));
        Assert.False(File.Exists(Path.Combine(c2, "etc/c1.conf")));
        Assert.True(File.Exists(Path.Combine(c2, "bin/sh")) || new FileInfo(Path.Combine(c2, "bin/sh")).LinkTarget is not null);

        // Unmount, remount: everything is still there.
        clock.Restart();
        await F.Mounter.UnmountAsync(c1);
        output.WriteLine($"umount (syncfs + umount + loop detach + FUSE file removal + layer flush): {clock.ElapsedMilliseconds} ms");
        await F.Mounter.UnmountAsync(c2);
        Assert.DoesNotContain(MountInfoEntry.ReadAll(), m => m.MountPoint == c1 || m.MountPoint == c2);
        output.WriteLine($"container c1 layer size after writing 8 MiB + a small file: {F.Store.GetUsage("c1").Size / 1024} KiB; c2 after a small file: {F.Store.GetUsage("c2").Size / 1024} KiB");
        Assert.True(F.Store.GetUsage("c1").Size >= 8L * Mib);
        Assert.True(F.Store.GetUsage("c2").Size < 4L * Mib, $"c2 holds {F.Store.GetUsage("c2").Size} bytes for one small file.");

        await F.Mounter.MountAsync("c1", c1);
        await F.Mounter.MountAsync("c2", c2);
        Assert.Equal(big, await File.ReadAllBytesAsync(Path.Combine(c1, "c1.bin")));
        Assert.Equal("c1 config\n", await File.ReadAllTextAsync(Path.Combine(c1, "etc/c1.conf")));
        Assert.Equal("c2 was here\n", await File.ReadAllTextAsync(Path.Combine(c2, "c2.txt")));

        // Changes and diff of a container against its image list exactly what was written (c1 is used where it is
        // mounted; the image is mounted read-only beside it).
        string[] expected = ["C /bin", "D /bin/sh", "A /c1.bin", "C /etc", "A /etc/c1.conf"];
        Assert.Equal(expected, (await LayerContent.ChangesAsync(F.Mounter, "c1")).Select(c => c.ToString()));
        Assert.Equal(["A /c2.txt"], (await LayerContent.ChangesAsync(F.Mounter, "c2")).Select(c => c.ToString()));
        Assert.Equal(big.Length + "c1 config\n".Length, await LayerContent.DiffSizeAsync(F.Mounter, "c1"));
        using var diff = new MemoryStream();
        IReadOnlyList<LayerChange> diffChanges = await LayerContent.DiffAsync(F.Mounter, "c1", diff);
        Assert.Equal(expected, diffChanges.Select(c => c.ToString()));
        diff.Position = 0;
        var names = new List<string>();
        using (var reader = new TarReader(diff))
        {
            while (await reader.GetNextEntryAsync() is TarEntry entry)
            {
                names.Add(entry.Name.TrimEnd('/'));
                if (entry.Name == "c1.bin")
                {
                    using var content = new MemoryStream();
                    await entry.DataStream!.CopyToAsync(content);
                    Assert.Equal(big, content.ToArray());
                }
            }
        }

        Assert.Equal(["bin", "bin/.wh.sh", "c1.bin", "etc", "etc/c1.conf"], names);
        Assert.Equal(["c1", "c2"], F.Mounter.List().Select(m => m.LayerId));

        // Remove the containers: the space they took returns.
        await F.Mounter.UnmountAsync(c1);
        await F.Mounter.UnmountAsync(c2);
        await F.Store.RemoveAsync("c1");
        await F.Store.RemoveAsync("c2");
        Assert.Equal(imagesSize, F.LayerFilesSize());
        Assert.Empty(Directory.EnumerateFileSystemEntries(F.Store.Paths.Mounts));
        Assert.DoesNotContain(LoopDevice.ListBound(), b => b.BackingFile.StartsWith(F.Root, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Fstrim_after_deleting_a_large_file_shrinks_the_container_layer()
    {
        Layer baseFs = await BaseFilesystem.EnsureAsync(F.Store, F.Mounter, MounterTestStore.Capacity);
        await F.Store.CreateAsync(new LayerSpec { Id = "c", Parent = baseFs.Id });
        string dir = F.Dir("c");
        await F.Mounter.MountAsync("c", dir);
        await File.WriteAllBytesAsync(Path.Combine(dir, "big.bin"), TestPatterns.Bytes(11, 64 * Mib));
        await MounterTestStore.Run("sync", "-f", Path.Combine(dir, "big.bin"));
        long written = F.Store.GetUsage("c").Size;

        File.Delete(Path.Combine(dir, "big.bin"));
        await MounterTestStore.Run("fstrim", dir);
        await MounterTestStore.Run("sync", "-f", dir);
        await F.Mounter.UnmountAsync(dir);
        long trimmed = F.Store.GetUsage("c").Size;
        output.WriteLine($"container layer: {written / 1024} KiB after writing 64 MiB, {trimmed / 1024} KiB after deleting it and fstrim");
        Assert.True(written >= 64L * Mib, $"the layer holds {written} bytes after 64 MiB were written and synced.");
        Assert.True(trimmed < written - (48L * Mib), $"fstrim freed too little: {written} bytes before, {trimmed} after.");
    }
}
