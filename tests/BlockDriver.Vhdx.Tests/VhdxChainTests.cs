using System.Globalization;
using BlockDriver.Abstractions;
using BlockDriver.Testing;
using BlockDriver.Vhdx.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Vhdx.Tests;

public sealed class VhdxChainTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>(seed, logical sector size); seed 0 takes <c>BLOCKDRIVER_SEED</c> or a random one, printed.</summary>
    public static readonly TheoryData<int, int> Seeds = new()
    {
        { 1, 512 },
        { 2, 512 },
        { 3, 4096 },
        { 4, 512 },
        { 0, 512 },
        { 0, 4096 },
    };

    private const int Mib = 1 << 20;
    private static readonly VhdxOpenOptions ReadOnly = new() { ReadOnly = true };

    private readonly ScratchDirectory _dir = new("bd-chain");

    public void Dispose() => _dir.Dispose();

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task Index_resolves_and_reads_every_range_as_the_per_level_walk_does(int seed, int sectorSize)
    {
        if (seed == 0)
        {
            seed = Environment.GetEnvironmentVariable(BlockDeviceModelTests.SeedVariable) is { Length: > 0 } value
                ? int.Parse(value, CultureInfo.InvariantCulture)
                : Random.Shared.Next(5, int.MaxValue);
        }

        output.WriteLine($"seed {seed} (set {BlockDeviceModelTests.SeedVariable}={seed} to repeat the random cases), {sectorSize}-byte sectors");
        var random = new Random(seed);
        (string top, byte[] model, bool[] known) = await BuildRandomChainAsync(random, sectorSize);

        await using VhdxChain chain = VhdxChain.Open(top);
        long length = chain.VirtualSize;
        output.WriteLine($"{chain.Files.Count} files, block sizes {string.Join(", ", chain.Files.Select(f => f.BlockSize >> 20))} MiB, " +
                         $"{length} bytes; index: {chain.IndexBlockCount} blocks of {chain.IndexBlockSize >> 20} MiB, {chain.IndexMemoryBytes} bytes");
        Assert.Equal(chain.Files.Min(f => f.BlockSize), chain.IndexBlockSize);

        AssertSameExtents(ChainWalk.Map(chain.Files, 0, length), ResolveAll(chain, 0, length), "the whole disk");
        for (int i = 0; i < 400; i++)
        {
            (long offset, int count) = RandomRange(random, length, sectorSize);
            AssertSameExtents(ChainWalk.Map(chain.Files, offset, count), ResolveAll(chain, offset, count), $"[{offset}, +{count})");
        }

        byte[] walked = await ChainWalk.ReadAsync(chain.Files, 0, (int)length);
        byte[] read = new byte[length];
        await chain.ReadAsync(0, read);
        DeviceAssert.Bytes(walked, read, 0, sectorSize, "VhdxChain.ReadAsync of the whole disk against the walk");
        AssertModel(model, known, read, 0, sectorSize, "VhdxChain.ReadAsync of the whole disk");
        for (int i = 0; i < 200; i++)
        {
            (long offset, int count) = RandomRange(random, length, sectorSize);
            byte[] part = new byte[count];
            await chain.ReadAsync(offset, part);
            DeviceAssert.Bytes(walked.AsSpan((int)offset, count), part, offset, sectorSize, $"VhdxChain.ReadAsync of [{offset}, +{count})");
        }

        // A writable child over the shared chain: layer 0 is the child, layer i the chain's file i - 1.
        string childPath = _dir.File("child.vhdx");
        await VhdxFile.CreateDifferencingAsync(childPath, top);
        await using (VhdxDisk child = VhdxDisk.Open(childPath, chain))
        {
            Assert.Same(chain, child.Chain);
            Assert.Equal(chain.Files.Count + 1, child.Files.Count);
            Assert.Same(child.Top, child.Files[0]);
            for (int i = 1; i < child.Files.Count; i++)
            {
                Assert.Same(chain.Files[i - 1], child.Files[i]);
            }

            await ApplyRandomOperationsAsync(child, random, model, known, random.Next(4, 12));
            await AssertDiskMatchesWalkAsync(child, model, known, "child over the shared chain");
        }

        // Opened the classic way, the same child indexes its parents privately and reads the same.
        await using (VhdxDisk disk = VhdxDisk.Open(childPath, ReadOnly))
        {
            Assert.NotSame(chain, disk.Chain);
            await AssertDiskMatchesWalkAsync(disk, model, known, "child opened with its own chain");
        }
    }

    [Fact]
    public async Task Index_built_in_several_passes_joins_them_seamlessly()
    {
        // With 1 MiB blocks the build decides 1024 blocks (1 GiB) per pass; a disk of two and a half passes, with a
        // data run of the base and one of the middle file each crossing a seam, which must come out whole.
        var oneMib = new VhdxCreateOptions { BlockSize = Mib };
        long seam = (long)ChainIndex.WindowBlocks * Mib;
        long length = (5 * seam / 2) + (3 * 512);
        string basePath = _dir.File("base.vhdx");
        VhdxFile.CreateDynamic(basePath, length, oneMib);
        await using (VhdxDisk disk = VhdxDisk.Open(basePath))
        {
            await disk.WriteAsync(seam - Mib, TestPatterns.Bytes(1, 2 * Mib));
            await disk.WriteAsync(2 * seam, TestPatterns.Bytes(2, Mib));
            await disk.WriteAsync(length - 1024, TestPatterns.Bytes(3, 1024));
        }

        string middle = await CreateChildAsync(basePath, "middle.vhdx");
        await using (VhdxDisk disk = VhdxDisk.Open(middle))
        {
            await disk.WriteZeroesAsync(seam - (3 * Mib), (2 * Mib) + 4096);
            await disk.WriteAsync((2 * seam) - 4096, TestPatterns.Bytes(4, 8192));
        }

        string top = await CreateChildAsync(middle, "top.vhdx");
        await using (VhdxDisk disk = VhdxDisk.Open(top))
        {
            await disk.WriteAsync(seam + 8192, TestPatterns.Bytes(5, 1024));
        }

        await using VhdxChain chain = VhdxChain.Open(top);
        Assert.Equal((5 * ChainIndex.WindowBlocks / 2) + 1, chain.IndexBlockCount);
        List<ChainExtent> whole = ResolveAll(chain, 0, length);
        AssertSameExtents(ChainWalk.Map(chain.Files, 0, length), whole, "the whole disk");
        Assert.Contains(whole, e => e.Offset < seam && e.Offset + e.Length > seam && e.Kind == ExtentKind.Data && e.Layer == 2);
        Assert.Contains(whole, e => e.Offset < 2 * seam && e.Offset + e.Length > 2 * seam && e.Kind == ExtentKind.Data && e.Layer == 1);
        foreach (long at in new[] { seam, 2 * seam, length - (2 * Mib) })
        {
            long offset = at - (2 * Mib);
            AssertSameExtents(ChainWalk.Map(chain.Files, offset, 4 * Mib), ResolveAll(chain, offset, 4 * Mib), $"around {at}");
            byte[] walked = await ChainWalk.ReadAsync(chain.Files, offset, 2 * Mib);
            byte[] read = new byte[2 * Mib];
            await chain.ReadAsync(offset, read);
            DeviceAssert.Bytes(walked, read, offset, 512, $"read before {at}");
        }
    }

    [Fact]
    public async Task Disks_sharing_a_chain_see_only_their_own_writes()
    {
        (string top, _, _) = await BuildRandomChainAsync(new Random(77), 512);
        await using VhdxChain chain = VhdxChain.Open(top);
        long length = chain.VirtualSize;
        byte[] baseline = new byte[length];
        await chain.ReadAsync(0, baseline);
        Dictionary<string, string> hashes = chain.Files.ToDictionary(f => f.Path, f => RawVhdx.Sha256(f.Path));

        string pathA = _dir.File("a.vhdx");
        string pathB = _dir.File("b.vhdx");
        await VhdxFile.CreateDifferencingAsync(pathA, top);
        await VhdxFile.CreateDifferencingAsync(pathB, top);
        byte[][] models;
        await using (VhdxDisk a = VhdxDisk.Open(pathA, chain))
        await using (VhdxDisk b = VhdxDisk.Open(pathB, chain))
        {
            // Both disks run at once on the thread pool, over the same ranges, each checking its reads against its
            // own model as it goes.
            models = await Task.WhenAll(
                Task.Run(() => ExerciseAsync(a, baseline, seed: 1)),
                Task.Run(() => ExerciseAsync(b, baseline, seed: 2)));
            Assert.False(models[0].AsSpan().SequenceEqual(models[1]), "the two disks were meant to hold different data");
            byte[] readA = await a.ReadAllBytesAsync();
            byte[] readB = await b.ReadAllBytesAsync();
            DeviceAssert.Bytes(models[0], readA, 0, 512, "disk a after both ran");
            DeviceAssert.Bytes(models[1], readB, 0, 512, "disk b after both ran");
        }

        byte[] after = new byte[length];
        await chain.ReadAsync(0, after);
        DeviceAssert.Bytes(baseline, after, 0, 512, "the shared chain after two disks wrote over it");
        foreach ((string path, string hash) in hashes)
        {
            Assert.True(hash == RawVhdx.Sha256(path), $"{path} of the shared chain changed");
        }

        // Reopened over the same chain, each disk still holds exactly its own data.
        await using (VhdxDisk a = VhdxDisk.Open(pathA, chain, ReadOnly))
        {
            byte[] read = await a.ReadAllBytesAsync();
            DeviceAssert.Bytes(models[0], read, 0, 512, "disk a reopened");
        }

        await using (VhdxDisk b = VhdxDisk.Open(pathB, chain, ReadOnly))
        {
            byte[] read = await b.ReadAllBytesAsync();
            DeviceAssert.Bytes(models[1], read, 0, 512, "disk b reopened");
        }
    }

    [Fact]
    public async Task Chain_whose_parent_changed_after_the_child_was_made_is_refused()
    {
        string basePath = _dir.File("base.vhdx");
        VhdxFile.CreateDynamic(basePath, 8 * Mib);
        string middle = await CreateChildAsync(basePath, "middle.vhdx");
        string top = await CreateChildAsync(middle, "top.vhdx");
        await using (VhdxDisk disk = VhdxDisk.Open(middle))
        {
            // A new DataWriteGuid: top's parent_linkage no longer names middle's content.
            await disk.WriteAsync(0, TestPatterns.Bytes(1, 512));
        }

        string before = RawVhdx.HashDirectory(_dir.FullName);
        var e = Assert.Throws<BlockDriverException>(() => VhdxChain.Open(top));
        Assert.Equal(ErrorKind.Corrupt, e.Kind);
        Assert.Contains($"parent {middle} has changed since the child was made", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, RawVhdx.HashDirectory(_dir.FullName));

        // The lower link is intact, so a chain starting at middle opens.
        await using VhdxChain lower = VhdxChain.Open(middle);
        Assert.Equal(2, lower.Files.Count);
    }

    [Fact]
    public async Task Shared_open_refuses_a_file_that_is_not_a_child_of_the_chains_top()
    {
        string basePath = _dir.File("base.vhdx");
        VhdxFile.CreateDynamic(basePath, 8 * Mib);
        string l1 = await CreateChildAsync(basePath, "l1.vhdx");
        string l2 = await CreateChildAsync(l1, "l2.vhdx");
        string sibling = await CreateChildAsync(l1, "sibling.vhdx");
        string lone = _dir.File("lone.vhdx");
        VhdxFile.CreateDynamic(lone, 8 * Mib);
        string child = await CreateChildAsync(l2, "child.vhdx");

        await using VhdxChain chain = VhdxChain.Open(l2);
        string before = RawVhdx.HashDirectory(_dir.FullName);
        foreach (bool readOnly in new[] { true, false })
        {
            var options = new VhdxOpenOptions { ReadOnly = readOnly };
            var e = Assert.Throws<BlockDriverException>(() => VhdxDisk.Open(sibling, chain, options));
            Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
            Assert.Contains($"its parent is {l1}, not the shared chain's top {l2}", e.Message, StringComparison.Ordinal);

            e = Assert.Throws<BlockDriverException>(() => VhdxDisk.Open(lone, chain, options));
            Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
            Assert.Contains("has no parent", e.Message, StringComparison.Ordinal);

            e = Assert.Throws<BlockDriverException>(() => VhdxDisk.Open(l2, chain, options));
            Assert.Equal(ErrorKind.Corrupt, e.Kind);
            Assert.Contains("(a loop)", e.Message, StringComparison.Ordinal);

            Assert.Equal(before, RawVhdx.HashDirectory(_dir.FullName));
        }

        // A real child opens over it.
        await using VhdxDisk disk = VhdxDisk.Open(child, chain);
        Assert.Equal(4, disk.Files.Count);
    }

    [Fact]
    public async Task Shared_open_refuses_a_child_made_before_the_chains_top_changed()
    {
        string basePath = _dir.File("base.vhdx");
        VhdxFile.CreateDynamic(basePath, 8 * Mib);
        string child = await CreateChildAsync(basePath, "child.vhdx");
        await using (VhdxDisk disk = VhdxDisk.Open(basePath))
        {
            await disk.WriteAsync(Mib, TestPatterns.Bytes(3, 4096));
        }

        await using VhdxChain chain = VhdxChain.Open(basePath);
        string before = RawVhdx.HashDirectory(_dir.FullName);
        var e = Assert.Throws<BlockDriverException>(() => VhdxDisk.Open(child, chain));
        Assert.Equal(ErrorKind.Corrupt, e.Kind);
        Assert.Contains($"parent {basePath} has changed since the child was made", e.Message, StringComparison.Ordinal);
        Assert.Equal(before, RawVhdx.HashDirectory(_dir.FullName));
    }

    [Fact]
    public async Task Chain_deeper_than_the_limit_is_refused()
    {
        string path = _dir.File("base.vhdx");
        VhdxFile.CreateDynamic(path, 8 * Mib);
        string middle = path;
        for (int i = 1; i <= 3; i++)
        {
            middle = path;
            path = await CreateChildAsync(path, $"l{i}.vhdx");
        }

        var limit = new VhdxOpenOptions { MaxChainDepth = 3 };
        var e = Assert.Throws<BlockDriverException>(() => VhdxChain.Open(path, limit));
        Assert.Equal(ErrorKind.Corrupt, e.Kind);
        Assert.Contains("the chain is deeper than 3 files", e.Message, StringComparison.Ordinal);

        await using VhdxChain three = VhdxChain.Open(middle, limit);
        Assert.Equal(3, three.Files.Count);
        e = Assert.Throws<BlockDriverException>(() => VhdxDisk.Open(path, three, limit));
        Assert.Contains("the chain is deeper than 3 files", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<BlockDriverException>(() => VhdxDisk.Open(path, limit));
        Assert.Contains("the chain is deeper than 3 files", e.Message, StringComparison.Ordinal);

        await using VhdxDisk disk = VhdxDisk.Open(path, three);
        Assert.Equal(4, disk.Files.Count);
    }

    [Fact]
    public async Task Index_takes_8_bytes_per_block_one_file_decides_and_16_per_run_of_a_shared_block()
    {
        var oneMib = new VhdxCreateOptions { BlockSize = Mib };
        string basePath = _dir.File("base.vhdx");
        VhdxFile.CreateDynamic(basePath, 8 * Mib, oneMib);
        await using (VhdxDisk disk = VhdxDisk.Open(basePath))
        {
            await disk.WriteAsync(0, TestPatterns.Bytes(1, 4 * Mib));
        }

        string child = await CreateChildAsync(basePath, "child.vhdx");
        await using (VhdxDisk disk = VhdxDisk.Open(child))
        {
            await disk.WriteAsync(Mib, TestPatterns.Bytes(2, Mib / 2)); // block 1: child, then base
            await disk.WriteAsync((6 * Mib) + 4096, TestPatterns.Bytes(3, 512)); // block 6: hole, child, hole
            await disk.WriteZeroesAsync(7 * Mib, Mib); // block 7: ZERO in the child
        }

        await using VhdxChain chain = VhdxChain.Open(child);
        Assert.Equal(Mib, chain.IndexBlockSize);
        Assert.Equal(8, chain.IndexBlockCount);
        Assert.Equal((8 * 8) + ((2 + 3) * 16), chain.IndexMemoryBytes);

        List<ChainExtent> extents = ResolveAll(chain, 0, 8 * Mib);
        Assert.Equal(
            [ExtentKind.Data, ExtentKind.Data, ExtentKind.Data, ExtentKind.Hole, ExtentKind.Data, ExtentKind.Hole, ExtentKind.Zero],
            extents.Select(e => e.Kind));
        Assert.Equal([1, 0, 1, -1, 0, -1, 0], extents.Select(e => e.Layer));
        Assert.Equal([Mib, Mib / 2, 5 * Mib / 2, (2 * Mib) + 4096, 512, Mib - 4096 - 512, Mib], extents.Select(e => (int)e.Length));
    }

    [Fact]
    public async Task Disk_over_a_shared_chain_leaves_the_chain_open()
    {
        string basePath = _dir.File("base.vhdx");
        VhdxFile.CreateDynamic(basePath, 8 * Mib);
        byte[] data = TestPatterns.Bytes(5, 3 * Mib);
        await using (VhdxDisk disk = VhdxDisk.Open(basePath))
        {
            await disk.WriteAsync(Mib, data);
        }

        string child = await CreateChildAsync(basePath, "child.vhdx");
        VhdxChain chain = VhdxChain.Open(basePath);
        try
        {
            await using (VhdxDisk disk = VhdxDisk.Open(child, chain))
            {
                byte[] fromChild = await disk.ReadBytesAsync(Mib, data.Length);
                DeviceAssert.Bytes(data, fromChild, Mib, 512, "child over the chain");
            }

            byte[] read = new byte[data.Length];
            await chain.ReadAsync(Mib, read);
            DeviceAssert.Bytes(data, read, Mib, 512, "the chain after its disk was disposed");
        }
        finally
        {
            await chain.DisposeAsync();
        }

        Assert.Throws<ObjectDisposedException>(() => VhdxDisk.Open(child, chain));
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await chain.ReadAsync(0, new byte[512]));
        await chain.DisposeAsync();
    }

    [Theory]
    [InlineData(1, 512)]
    [InlineData(-512, 512)]
    [InlineData(8 * Mib, 512)]
    [InlineData(0, 100)]
    public async Task Resolve_and_read_refuse_ranges_outside_the_disk_or_off_the_sectors(long offset, int length)
    {
        string basePath = _dir.File("base.vhdx");
        VhdxFile.CreateDynamic(basePath, 8 * Mib);
        await using VhdxChain chain = VhdxChain.Open(basePath);

        Assert.Throws<ArgumentOutOfRangeException>(() => chain.Resolve(offset, length, []));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await chain.ReadAsync(offset, new byte[length]));
    }

    private static List<ChainExtent> ResolveAll(VhdxChain chain, long offset, long length)
    {
        var extents = new List<ChainExtent>();
        chain.Resolve(offset, length, extents);
        return extents;
    }

    private static void AssertSameExtents(List<ChainExtent> expected, List<ChainExtent> actual, string what)
    {
        for (int i = 0; i < Math.Min(expected.Count, actual.Count); i++)
        {
            Assert.True(expected[i] == actual[i], $"{what}: extent {i} is {actual[i]}, the walk says {expected[i]}");
        }

        Assert.True(expected.Count == actual.Count, $"{what}: {actual.Count} extents, the walk gives {expected.Count}");
    }

    private static void AssertModel(byte[] model, bool[] known, byte[] actual, long offset, int sectorSize, string what)
    {
        for (int sector = 0; sector < actual.Length / sectorSize; sector++)
        {
            long at = offset + ((long)sector * sectorSize);
            if (known[at / sectorSize])
            {
                DeviceAssert.Bytes(model.AsSpan((int)at, sectorSize), actual.AsSpan(sector * sectorSize, sectorSize), at, sectorSize, what);
            }
        }
    }

    // Everything a disk says about itself agrees with the walk through its files and with the model.
    private static async Task AssertDiskMatchesWalkAsync(VhdxDisk disk, byte[] model, bool[] known, string what)
    {
        List<ChainExtent> mapped = await disk.MapChainAsync(0, disk.Length).ToListAsync();
        AssertSameExtents(ChainWalk.Map(disk.Files, 0, disk.Length), mapped, $"{what}: MapChainAsync");
        byte[] read = await disk.ReadAllBytesAsync();
        byte[] walked = await ChainWalk.ReadAsync(disk.Files, 0, (int)disk.Length);
        DeviceAssert.Bytes(walked, read, 0, disk.SectorSize, $"{what}: ReadAsync against the walk");
        AssertModel(model, known, read, 0, disk.SectorSize, $"{what}: ReadAsync against the model");
    }

    // A chain of 2 to 12 files with block sizes of 1, 2 or 4 MiB each (so index blocks are smaller than some files'
    // blocks), a short last block, and in every file random writes, zeroes and trims clustered around block
    // boundaries. Returns the top file and the model: what each byte must read as, and per sector whether it is
    // known (a trim leaves a sector undefined until it is written again).
    private async Task<(string Top, byte[] Model, bool[] Known)> BuildRandomChainAsync(Random random, int sectorSize)
    {
        long length = (12L * Mib) + (random.Next(0, 64) * (long)sectorSize);
        int files = random.Next(2, 13);
        byte[] model = new byte[length];
        bool[] known = new bool[length / sectorSize];
        Array.Fill(known, true);
        string path = _dir.File("layer-00.vhdx");
        VhdxFile.CreateDynamic(path, length, new VhdxCreateOptions { BlockSize = RandomBlockSize(random), LogicalSectorSize = sectorSize });
        for (int layer = 0; layer < files; layer++)
        {
            if (layer > 0)
            {
                string child = _dir.File($"layer-{layer:D2}.vhdx");
                await VhdxFile.CreateDifferencingAsync(child, path, new VhdxCreateOptions { BlockSize = RandomBlockSize(random) });
                path = child;
            }

            await using VhdxDisk disk = VhdxDisk.Open(path);
            await ApplyRandomOperationsAsync(disk, random, model, known, random.Next(4, 16));
        }

        return (path, model, known);
    }

    private static int RandomBlockSize(Random random) => Mib << random.Next(3);

    private static async Task ApplyRandomOperationsAsync(VhdxDisk disk, Random random, byte[] model, bool[] known, int count)
    {
        int sectorSize = disk.SectorSize;
        for (int i = 0; i < count; i++)
        {
            (long offset, int length) = RandomRange(random, disk.Length, sectorSize);
            Range sectors = (int)(offset / sectorSize)..(int)((offset + length) / sectorSize);
            switch (random.Next(6))
            {
                case < 3:
                    byte[] data = TestPatterns.Bytes(random.Next(), length);
                    await disk.WriteAsync(offset, data);
                    data.CopyTo(model, offset);
                    known.AsSpan(sectors).Fill(true);
                    break;
                case < 5:
                    await disk.WriteZeroesAsync(offset, length);
                    model.AsSpan((int)offset, length).Clear();
                    known.AsSpan(sectors).Fill(true);
                    break;
                default:
                    await disk.TrimAsync(offset, length);
                    known.AsSpan(sectors).Clear();
                    break;
            }
        }

        await disk.FlushAsync();
    }

    // Whole aligned blocks of 1 to 4 MiB now and then; otherwise a run of sectors starting near a 1 MiB boundary,
    // mostly short, sometimes up to three blocks long.
    private static (long Offset, int Length) RandomRange(Random random, long length, int sectorSize)
    {
        if (random.Next(4) == 0)
        {
            int size = Mib << random.Next(3);
            return (random.NextInt64(length / size) * size, size);
        }

        long boundary = random.NextInt64((length / Mib) + 1) * Mib;
        long start = Math.Clamp(boundary + (random.Next(-16, 17) * (long)sectorSize), 0, length - sectorSize);
        int maxSectors = random.Next(3) == 0 ? 3 * Mib / sectorSize : 32;
        long sectors = Math.Min(random.Next(1, maxSectors + 1), (length - start) / sectorSize);
        return (start, (int)(sectors * sectorSize));
    }

    // Random writes and reads of one disk, checked against its own model as it goes; returns the model.
    private static async Task<byte[]> ExerciseAsync(VhdxDisk disk, byte[] baseline, int seed)
    {
        byte[] model = (byte[])baseline.Clone();
        var random = new Random(seed);
        for (int i = 0; i < 300; i++)
        {
            (long offset, int length) = RandomRange(random, disk.Length, disk.SectorSize);
            if (random.Next(3) == 0)
            {
                byte[] read = await disk.ReadBytesAsync(offset, length);
                DeviceAssert.Bytes(model.AsSpan((int)offset, length), read, offset, disk.SectorSize, $"disk {disk.Top.Path}, operation {i}");
            }
            else
            {
                byte[] data = TestPatterns.Bytes((seed * 1000) + i, length);
                await disk.WriteAsync(offset, data);
                data.CopyTo(model, offset);
            }

            await Task.Yield();
        }

        await disk.FlushAsync();
        return model;
    }

    private async Task<string> CreateChildAsync(string parent, string name)
    {
        string path = _dir.File(name);
        await VhdxFile.CreateDifferencingAsync(path, parent);
        return path;
    }
}
