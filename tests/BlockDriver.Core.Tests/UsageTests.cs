using System.Globalization;

namespace BlockDriver.Core.Tests;

/// <summary>Size figures against reality: bytes written, and du of the store directory.</summary>
public sealed class UsageTests : StoreTestBase
{
    // A fresh VHDX costs its headers, region tables, log, metadata and BAT: about 200 KiB allocated; each 2 MiB
    // payload block written adds its data plus, in a differencing file, a sector-bitmap page. Everything beyond the
    // bytes written must fit in this.
    private const long Overhead = 1 << 20;

    [Fact]
    public async Task Size_follows_the_bytes_written_and_virtual_size_adds_the_parents()
    {
        await SealedBaseAsync(length: 8 << 20);
        long baseSize = Store.GetUsage("base").Size;
        Assert.InRange(baseSize, 8 << 20, (8 << 20) + Overhead);

        await Store.CloneAsync("base", "c1");
        await Store.CloneAsync("base", "c2");
        await WriteAsync("c1", 16 << 20, 12 << 20, 1);
        await WriteAsync("c2", 0, 3 << 20, 2);

        LayerUsage c1 = Store.GetUsage("c1");
        LayerUsage c2 = Store.GetUsage("c2");
        Assert.InRange(c1.Size, 12 << 20, (12 << 20) + Overhead);
        Assert.InRange(c2.Size, 3 << 20, (3 << 20) + Overhead);
        Assert.Equal(c1.Size + baseSize, c1.VirtualSize);
        Assert.Equal((Capacity, 0, 1), (c1.Capacity, c1.Children, c1.Containers));
        LayerUsage image = Store.GetUsage("base");
        Assert.Equal((2, 2), (image.Children, image.Containers));
    }

    [Fact]
    public async Task Store_figures_split_shared_and_exclusive_bytes_and_match_du()
    {
        await SealedBaseAsync(length: 8 << 20);
        await Store.CreateAsync(new LayerSpec { Id = "solo-image", Capacity = Capacity });
        await WriteAsync("solo-image", 0, 4 << 20, 3);
        await Store.SealAsync("solo-image");
        await Store.CloneAsync("solo-image", "solo");
        await Store.CreateAsync(new LayerSpec { Id = "unused", Capacity = Capacity });
        await WriteAsync("unused", 0, 1 << 20, 4);
        await Store.SealAsync("unused");
        await Store.CloneAsync("base", "c1");
        await Store.CloneAsync("base", "c2");
        await WriteAsync("c1", 0, 5 << 20, 5);
        long size(string id) => Store.GetUsage(id).Size;

        StoreUsage usage = Store.GetStoreUsage();

        Assert.Equal(size("base"), usage.Shared);
        Assert.Equal(size("unused"), usage.Unused);
        ContainerUsage solo = Assert.Single(usage.Containers, c => c.Id == "solo");
        Assert.Equal(size("solo") + size("solo-image"), solo.Exclusive);
        ContainerUsage c1 = Assert.Single(usage.Containers, c => c.Id == "c1");
        Assert.Equal((size("c1"), size("base")), (c1.Exclusive, c1.Shared));
        Assert.Equal(usage.LayerBytes, usage.Shared + usage.Exclusive + usage.Unused);
        Assert.Equal(3.0 * Capacity / usage.Allocated, usage.Overcommit, 6);
        Assert.Equal(await DuAsync(Root), usage.Allocated);
    }

    [Fact]
    public async Task Allocated_does_not_count_file_systems_mounted_inside_the_store()
    {
        // A mounted layer (mnt/ID) or the FUSE file system of layer devices (run/fuse) is another file system; its
        // files are the layers' contents and virtual sizes, not storage the store's directory takes.
        await SealedBaseAsync();
        long before = Store.GetStoreUsage().Allocated;
        string mountPoint = Path.Combine(Root, "mnt", "tmpfs");
        Directory.CreateDirectory(mountPoint);
        Assert.Equal(0, (await ChildProcess.RunAsync("mount", ["-t", "tmpfs", "-o", "size=64m", "blockdriver-test", mountPoint], Root)).ExitCode);
        try
        {
            await File.WriteAllBytesAsync(Path.Combine(mountPoint, "data"), new byte[16 << 20]);
            StoreUsage usage = Store.GetStoreUsage();
            Assert.InRange(usage.Allocated, before, before + (1 << 20));
            Assert.Equal(await DuAsync(Root), usage.Allocated);
        }
        finally
        {
            Assert.Equal(0, (await ChildProcess.RunAsync("umount", [mountPoint], Root)).ExitCode);
        }
    }

    [Fact]
    public async Task Removing_containers_returns_the_store_to_its_earlier_allocation()
    {
        await SealedBaseAsync();
        long before = Store.GetStoreUsage().LayerBytes;
        for (int i = 0; i < 4; i++)
        {
            await Store.CloneAsync("base", $"c{i}");
            await WriteAsync($"c{i}", i * (4L << 20), 4 << 20, i);
        }

        Assert.True(Store.GetStoreUsage().LayerBytes >= before + (16 << 20));
        for (int i = 0; i < 4; i++)
        {
            await Store.RemoveAsync($"c{i}");
        }

        Assert.Equal(before, Store.GetStoreUsage().LayerBytes);
    }

    private static async Task<long> DuAsync(string path)
    {
        ProcessResult du = await ChildProcess.RunAsync("du", ["-sx", "--block-size=1", path], path);
        Assert.Equal(0, du.ExitCode);
        return long.Parse(du.Stdout.Split('\t')[0], CultureInfo.InvariantCulture);
    }
}
