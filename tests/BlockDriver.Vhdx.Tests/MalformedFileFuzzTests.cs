using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using BlockDriver.Abstractions;
using BlockDriver.Vhdx.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Vhdx.Tests;

/// <summary>Mutation fuzzing of the structured areas of real files (headers, region tables, log, metadata, BAT,
/// sector bitmap): every mutated file must either open, read and map, or fail with a
/// <see cref="BlockDriverException"/>; never another exception type, never a hang, and an open never allocates more
/// than a small multiple of the files' real sizes, whatever sizes the files claim (issue 14).</summary>
/// <remarks>Reproduce with <c>BLOCKDRIVER_SEED</c> (printed) and <c>BLOCKDRIVER_FUZZ_ITERATIONS</c>; a failure names
/// its iteration, and iteration i always mutates the same way for the same seed.</remarks>
public sealed partial class MalformedFileFuzzTests : IDisposable
{
    private const int MiB = 1 << 20;
    private const long DiskLength = 8L * MiB;
    private const int Page = 4096;
    private static readonly TimeSpan PerIteration = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(15);

    private readonly ITestOutputHelper _output;
    private readonly ScratchDirectory _dir = new("bd-fuzz");

    public MalformedFileFuzzTests(ITestOutputHelper output)
    {
        _output = output;
    }

    private enum Checksum
    {
        None,
        Header,
        RegionTable,
        LogEntry,
    }

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Mutated_files_open_and_read_or_fail_with_a_typed_error()
    {
        int seed = Environment.GetEnvironmentVariable("BLOCKDRIVER_SEED") is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : Random.Shared.Next(1, 1_000_000);
        int iterations = Environment.GetEnvironmentVariable("BLOCKDRIVER_FUZZ_ITERATIONS") is { } n ? int.Parse(n, CultureInfo.InvariantCulture) : 2000;
        _output.WriteLine($"seed {seed} (set BLOCKDRIVER_SEED to reproduce), up to {iterations} iterations within {Budget.TotalSeconds} s");

        Variant[] variants = await CreateVariantsAsync();
        string work = _dir.Subdirectory("work");
        string parent = Path.Combine(work, "base.vhdx");
        variants[0].Image.WriteTo(parent);
        string parentHash = RawVhdx.Sha256(parent);

        // One file per variant. A read-only open changes nothing, so after a read-only iteration restoring the
        // mutated bytes gives the original back; a writable one may change anything, so the file is rewritten.
        string[] targets = [.. variants.Select((_, i) => Path.Combine(work, $"target{i}.vhdx"))];
        bool[] dirty = [.. variants.Select(_ => true)];

        var outcomes = new SortedDictionary<string, int>(StringComparer.Ordinal);
        long maxAllocated = 0;
        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        var seeds = new Random(seed);
        int done = 0;
        for (; done < iterations && clock.Elapsed < Budget && failures.Count < 20; done++)
        {
            // Iteration i of a seed always draws the same mutations, whatever ran before it.
            var random = new Random(seeds.Next());
            int index = random.Next(variants.Length);
            Variant variant = variants[index];
            string target = targets[index];
            bool writable = random.Next(8) == 0;
            bool claims = random.Next(6) == 0;
            List<(long Offset, byte[] Data)> mutations = claims ? MutateClaims(variant, random) : Mutate(variant, random);
            bool fixChecksums = claims || random.Next(10) < 6;
            List<(long Offset, byte[] Data)> patches = fixChecksums ? [.. mutations, .. ChecksumFixes(variant, mutations)] : mutations;
            if (dirty[index])
            {
                variant.Image.WriteTo(target);
            }

            WritePatches(target, patches);
            dirty[index] = writable;

            string context = $"seed {seed} iteration {done}: {variant.Name}, {(writable ? "writable" : "read-only")}, bytes {string.Join(", ", mutations.Select(p => $"{p.Offset}={Convert.ToHexString(p.Data)}"))}{(fixChecksums ? ", checksums fixed" : string.Empty)}";
            int exerciseSeed = random.Next();
            try
            {
                (string outcome, long allocated) = await Task.Run(() => ExerciseAsync(target, work, writable, exerciseSeed)).WaitAsync(PerIteration);
                outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;

                // What an open may hold: the 1 MiB header section, the log, the metadata region and the BAT of each
                // file, all inside the file; the chain index, at most the BAT again; a writable open parses twice.
                long bound = AllocationBound(target, parent);
                maxAllocated = Math.Max(maxAllocated, allocated);
                if (allocated > bound)
                {
                    failures.Add($"{context}: the open allocated {allocated / MiB} MiB, more than the {bound / MiB} MiB its files' sizes allow ({outcome})");
                }
            }
            catch (TimeoutException)
            {
                // The hung task still holds the file; nothing further can run here.
                failures.Add($"{context}: no result within {PerIteration.TotalSeconds} s (hang)");
                break;
            }
            catch (Exception e)
            {
                failures.Add($"{context}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }

            if (!writable)
            {
                WritePatches(target, [.. patches.Select(p => (p.Offset, variant.Image.Read(p.Offset, p.Data.Length)))]);
            }
        }

        _output.WriteLine($"{done} iterations in {clock.Elapsed.TotalSeconds:F1} s; the largest open allocated {maxAllocated / 1024} KiB");
        foreach ((string outcome, int count) in outcomes)
        {
            _output.WriteLine($"{count,6}  {outcome}");
        }

        foreach (string failure in failures)
        {
            _output.WriteLine("FAILURE " + failure);
        }

        Assert.Equal(parentHash, RawVhdx.Sha256(parent));
        for (int i = 0; i < variants.Length; i++)
        {
            if (!dirty[i])
            {
                // Read-only opens changed nothing, so the restored file is the original again.
                string restored = RawVhdx.Sha256(targets[i]);
                variants[i].Image.WriteTo(targets[i]);
                Assert.True(restored == RawVhdx.Sha256(targets[i]), $"{variants[i].Name}: a read-only open changed the file (seed {seed})");
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} mutated files escaped with an untyped error or hung (seed {seed}):\n{string.Join("\n\n", failures)}");
        Assert.True(done >= Math.Min(iterations, 200), $"only {done} iterations ran within the budget; the run proves little");
        Assert.True(outcomes.GetValueOrDefault("opened") > 0 && outcomes.Count > 5, "the mutations should both pass and trip many different checks");
    }

    // Three times the real sizes of the file and of the parent it may name, plus 16 MiB of fixed costs.
    private static long AllocationBound(string target, string parent) =>
        (3 * (new FileInfo(target).Length + new FileInfo(parent).Length)) + (16L * MiB);

    // Opens the file (with its chain), reads and maps it, and in writable runs writes and flushes; returns the outcome
    // and the bytes the open itself allocated (on this thread: VhdxDisk.Open is synchronous).
    private static async Task<(string Outcome, long Allocated)> ExerciseAsync(string path, string root, bool writable, int seed)
    {
        var random = new Random(seed);
        long allocated = 0;
        try
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            VhdxDisk disk;
            try
            {
                disk = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = !writable, ParentRoot = root });
            }
            finally
            {
                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            }

            await using (disk)
            {
                long length = disk.Length;
                byte[] buffer = new byte[MiB];
                long limit = Math.Min(length, 16L * MiB);
                for (long offset = 0; offset < limit; offset += MiB)
                {
                    await disk.ReadAsync(offset, buffer.AsMemory(0, (int)Math.Min(MiB, length - offset)));
                }

                // A mutated size can make the disk large: sample the rest.
                for (int i = 0; i < 8 && length > limit; i++)
                {
                    long offset = random.NextInt64(length / Page) * Page;
                    await disk.ReadAsync(offset, buffer.AsMemory(0, (int)Math.Min(64 * 1024, length - offset)));
                }

                long end = 0;
                await foreach (Extent extent in disk.MapAsync(0, length))
                {
                    Assert.True(extent.Offset == end && extent.Length > 0, $"map is not contiguous at {end}: {extent}");
                    end = extent.End;
                }

                Assert.True(end == length, $"map covers {end} of {length} bytes");
                await foreach (ChainExtent extent in disk.MapChainAsync(0, length))
                {
                    Assert.True(extent.Layer < disk.Files.Count, $"extent names layer {extent.Layer} of {disk.Files.Count}");
                }

                if (writable)
                {
                    // A mutated size may be a single sector: write 4 KiB, or the whole disk when it is smaller.
                    int sector = disk.SectorSize;
                    int count = (int)Math.Min(Page, length);
                    long offset = random.NextInt64(((length - count) / sector) + 1) * sector;
                    await disk.WriteAsync(offset, buffer.AsMemory(0, count));
                    long zero = random.NextInt64(length / sector) * sector;
                    await disk.WriteZeroesAsync(zero, Math.Min(length - zero, 256 * 1024));
                    await disk.FlushAsync();
                }
            }

            return ("opened", allocated);
        }
        catch (BlockDriverException e)
        {
            return ("refused: " + Digits().Replace(e is VhdxFormatException f ? f.Structure : e.Kind.ToString(), "N"), allocated);
        }
        catch (AggregateException e) when (e.InnerExceptions.All(x => x is BlockDriverException))
        {
            return ("refused on close", allocated);
        }
    }

    // Claims that agree with each other, at and past the spec's limits (MS-VHDX 2.2–2.6): a virtual size up to and
    // past 64 TiB, a BAT region of the length that size needs (up to 513 MiB, far past the file), and in a file with
    // a pending log an entry whose LastFileOffset says the file is that large. Random bytes rarely line all three up;
    // together they are what made a 4 MiB file allocate 1 GiB (issue 14).
    private static List<(long Offset, byte[] Data)> MutateClaims(Variant variant, Random random)
    {
        long[] sizes = [1L << 40, 1L << 43, 1L << 46, (1L << 46) + MiB, 1L << 50];
        long virtualSize = sizes[random.Next(sizes.Length)];

        // 1 MiB blocks and 512-byte sectors, as every variant: R = 2^23 × 512 / 2^20 = 4096 blocks per chunk.
        const long ChunkRatio = 4096;
        long blocks = (virtualSize + MiB - 1) / MiB;
        long entries = variant.Name.StartsWith("differencing", StringComparison.Ordinal)
            ? (blocks + ChunkRatio - 1) / ChunkRatio * (ChunkRatio + 1)
            : blocks + ((blocks - 1) / ChunkRatio);
        long regionLength = Math.Min(((entries * 8) + MiB - 1) / MiB * MiB, 4095L * MiB);

        var patches = new List<(long, byte[])> { (variant.VirtualSizeOffset, BitConverter.GetBytes(virtualSize)) };
        if (random.Next(4) != 0)
        {
            foreach (long table in new[] { RawVhdx.RegionTable1Offset, RawVhdx.RegionTable2Offset })
            {
                patches.Add((table + variant.BatRegionEntryOffset + 24, BitConverter.GetBytes((uint)regionLength)));
            }
        }

        if (variant.Areas.Any(a => a.Name == "log") && variant.Name.Contains("pending", StringComparison.Ordinal) && random.Next(4) != 0)
        {
            long logOffset = variant.Areas.First(a => a.Name == "log").Offset;
            long last = random.Next(2) == 0 ? 600L * MiB : (1L << 46) + (1L << 30);
            patches.Add((logOffset + 56, BitConverter.GetBytes(Math.Max(last, 3L * MiB + regionLength))));
        }

        return patches;
    }

    private static List<(long Offset, byte[] Data)> Mutate(Variant variant, Random random)
    {
        byte[] interestingBytes = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0x10];
        ulong[] interestingValues =
        [
            0, 1, 0xFFFF_FFFF, 0x7FFF_FFFF, 0x8000_0000, MiB, Page, 0xFFFF, ulong.MaxValue, long.MaxValue,
            0x7FFF_FFFF_FFF0_0000, 1UL << 40, 1UL << 46, (1UL << 46) + 512, 7,
            0xFFFF_FFFF_FFF0_0006, 0x7FFF_FFFF_FFF0_0006, 0x7FFF_FFFF_FFF0_0007, (1UL << 30) | 6, // BAT entries far out
        ];
        var patches = new List<(long, byte[])>();
        Area focus = Pick(variant.Areas, random);
        int count = random.Next(1, 9);
        for (int i = 0; i < count; i++)
        {
            Area area = random.Next(10) < 7 ? focus : Pick(variant.Areas, random);
            int inArea = random.Next(2) == 0 ? random.Next(area.HotLength) : random.Next(Page);
            long offset = area.Offset + inArea;
            int kind = random.Next(100);
            if (kind < 20)
            {
                // A whole field: 4 or 8 bytes, aligned, from the values that break arithmetic.
                int width = random.Next(2) == 0 ? 4 : 8;
                offset -= offset % width;
                byte[] value = new byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(value, interestingValues[random.Next(interestingValues.Length)]);
                patches.Add((offset, value[..width]));
                continue;
            }

            byte current = variant.Image.Read(offset, 1)[0];
            byte next = kind switch
            {
                < 60 => (byte)random.Next(256),
                < 85 => (byte)(current ^ (1 << random.Next(8))),
                _ => interestingBytes[random.Next(interestingBytes.Length)],
            };
            patches.Add((offset, [next]));
        }

        return patches;
    }

    private static Area Pick(Area[] areas, Random random)
    {
        int ticket = random.Next(areas.Sum(a => a.Weight));
        foreach (Area area in areas)
        {
            ticket -= area.Weight;
            if (ticket < 0)
            {
                return area;
            }
        }

        return areas[^1];
    }

    // Recomputes the CRC-32C of every checksummed structure the patches touched, so that mutations reach the
    // checks behind the checksum: each fix is the whole structure, patched, with its new checksum.
    private static List<(long Offset, byte[] Data)> ChecksumFixes(Variant variant, List<(long Offset, byte[] Data)> patches)
    {
        var fixes = new List<(long, byte[])>();
        foreach (Area area in variant.Areas.Where(a => a.Checksum != Checksum.None && patches.Exists(p => p.Offset >= a.Offset && p.Offset < a.Offset + Page)))
        {
            int length = area.Checksum switch
            {
                Checksum.Header => RawVhdx.HeaderSize,
                Checksum.RegionTable => RawVhdx.RegionTableSize,
                _ => (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(Patched(variant.Image, area.Offset, 16, patches).AsSpan(8)), int.MaxValue),
            };
            if (length <= 0 || length % Page != 0 || length > MiB)
            {
                continue;
            }

            byte[] structure = Patched(variant.Image, area.Offset, length, patches);
            RawVhdx.SetChecksum(structure);
            fixes.Add((area.Offset, structure));
        }

        return fixes;
    }

    private static byte[] Patched(SparseImage image, long offset, int length, List<(long Offset, byte[] Data)> patches)
    {
        byte[] bytes = image.Read(offset, length);
        foreach ((long at, byte[] data) in patches)
        {
            for (int i = 0; i < data.Length; i++)
            {
                if (at + i >= offset && at + i < offset + length)
                {
                    bytes[at + i - offset] = data[i];
                }
            }
        }

        return bytes;
    }

    private static void WritePatches(string path, IEnumerable<(long Offset, byte[] Data)> patches)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        foreach ((long offset, byte[] data) in patches)
        {
            RandomAccess.Write(handle, data, offset);
        }
    }

    // Four files: a dynamic base and a differencing child, each also with a log entry that was written but not
    // applied (a crash between the log write and the in-place update).
    private async Task<Variant[]> CreateVariantsAsync()
    {
        string dir = _dir.Subdirectory("originals");
        string basePath = Path.Combine(dir, "base.vhdx");
        VhdxFile.CreateDynamic(basePath, DiskLength, new VhdxCreateOptions { BlockSize = MiB });
        await using (VhdxDisk disk = VhdxDisk.Open(basePath))
        {
            foreach (int block in new[] { 0, 1, 2, 4, 6 })
            {
                await disk.WriteAsync(((long)block * MiB) + (block * 8192), Pattern(block, 16 * 1024));
            }

            await disk.WriteZeroesAsync(4L * MiB, MiB);
        }

        string childPath = Path.Combine(dir, "child.vhdx");
        await VhdxFile.CreateDifferencingAsync(childPath, basePath);
        await using (VhdxDisk disk = VhdxDisk.Open(childPath))
        {
            await disk.WriteAsync(512, Pattern(10, 1024)); // PARTIALLY_PRESENT over parent data
            await disk.WriteAsync((3L * MiB) + 4096, Pattern(11, 8192)); // PARTIALLY_PRESENT over nothing
            await disk.WriteAsync(5L * MiB, Pattern(12, MiB)); // every sector: FULLY_PRESENT
            await disk.WriteZeroesAsync(6L * MiB, MiB); // ZERO, hiding the parent's block 6
        }

        string basePending = Path.Combine(dir, "base-pending.vhdx");
        string childPending = Path.Combine(dir, "child-pending.vhdx");
        File.Copy(basePath, basePending);
        File.Copy(childPath, childPending);
        foreach (string path in new[] { basePending, childPending })
        {
            VhdxDisk disk = VhdxDisk.Open(path);
            await using (disk)
            {
                disk.Top.FailAfterLogWrite = true;
                await disk.WriteAsync(7L * MiB, Pattern(20, 8192));
                await disk.WriteAsync((2L * MiB) + 65536, Pattern(21, 4096));
                await Assert.ThrowsAsync<IOException>(async () => await disk.Top.CommitAsync());
            }
        }

        return [Describe("dynamic", basePath), Describe("differencing", childPath), Describe("dynamic with pending log", basePending), Describe("differencing with pending log", childPending)];
    }

    // The structured areas of a file, found through its own headers and tables.
    private static Variant Describe(string name, string path)
    {
        SparseImage image = SparseImage.Capture(path);
        byte[] header = image.Read(RawVhdx.Header2Offset, 80);
        long logOffset = (long)BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(72));
        (long metadataOffset, _) = RawVhdx.Region(path, RawVhdx.MetadataRegion);
        (long batOffset, _) = RawVhdx.Region(path, RawVhdx.BatRegion);
        var areas = new List<Area>
        {
            new("file type identifier", 0, 16, Checksum.None, 1),
            new("header 1", RawVhdx.Header1Offset, 80, Checksum.Header, 2),
            new("header 2", RawVhdx.Header2Offset, 80, Checksum.Header, 2),
            new("region table 1", RawVhdx.RegionTable1Offset, 16 + (2 * 32), Checksum.RegionTable, 2),
            new("region table 2", RawVhdx.RegionTable2Offset, 16 + (2 * 32), Checksum.RegionTable, 1),
            new("log", logOffset, 64 + (4 * 32), Checksum.LogEntry, 3),
            new("metadata table", metadataOffset, 32 + (6 * 32), Checksum.None, 3),
            new("metadata items", metadataOffset + (64 * 1024), 512, Checksum.None, 3),
            new("BAT", batOffset, 8 * 8, Checksum.None, 3),
        };

        // Chunk 0's sector-bitmap entry is BAT entry R = 4096 (1 MiB blocks, 512-byte sectors); its bitmap has
        // 256 bytes per payload block.
        ulong bitmapEntry = BinaryPrimitives.ReadUInt64LittleEndian(image.Read(batOffset + (4096 * 8), 8));
        if ((bitmapEntry & 7) == 6)
        {
            areas.Add(new("BAT sector-bitmap entry", batOffset + (4096 * 8), 8, Checksum.None, 1));
            areas.Add(new("sector bitmap", (long)(bitmapEntry & ~0xF_FFFFUL), 8 * 256, Checksum.None, 2));
        }

        byte[] metadata = image.Read(metadataOffset, 64 * 1024);
        (_, int sizeItem, _) = RawVhdx.MetadataItem(metadata, RawVhdx.VirtualDiskSize);
        int batEntry = RawVhdx.RegionEntryOffset(image.Read(RawVhdx.RegionTable1Offset, RawVhdx.RegionTableSize), RawVhdx.BatRegion);
        return new Variant(name, image, [.. areas], metadataOffset + sizeItem, batEntry);
    }

    private static byte[] Pattern(int seed, int length)
    {
        byte[] bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [GeneratedRegex(@"\d+")]
    private static partial Regex Digits();

    // Offset and the length of its densely structured start (half the mutations land there, the rest anywhere in
    // the first 4 KiB); Weight is how often the area is picked.
    private sealed record Area(string Name, long Offset, int HotLength, Checksum Checksum, int Weight);

    // VirtualSizeOffset: the file offset of the Virtual Disk Size item; BatRegionEntryOffset: the BAT's entry in
    // either region table.
    private sealed record Variant(string Name, SparseImage Image, Area[] Areas, long VirtualSizeOffset, int BatRegionEntryOffset);
}
