using BlockDriver.Abstractions;

namespace BlockDriver.Testing;

/// <summary>
/// The behaviour every <see cref="IBlockDevice"/> promises (see its remarks), as an xunit suite. An implementation
/// runs it with a subclass that supplies the two factories; the suite disposes every device it obtains, then calls
/// <see cref="CleanupAsync"/> and deletes <see cref="Temp"/>, also when a test fails.
/// </summary>
/// <remarks>
/// Ranges are expressed in sectors and <see cref="BlockSize"/>s so that a format with allocation blocks (VHDX) gets
/// writes that straddle, fill and span blocks. <see cref="DeviceLength"/> must hold at least eight blocks.
/// </remarks>
/// <example>
/// <code>
/// public sealed class MemoryBlockDeviceConformanceTests : BlockDeviceConformanceTests
/// {
///     protected override Task&lt;IBlockDevice&gt; CreateDeviceAsync(long length, int sectorSize) =&gt;
///         Task.FromResult&lt;IBlockDevice&gt;(new MemoryBlockDevice(length, sectorSize));
///     ...
/// }
/// </code>
/// </example>
public abstract class BlockDeviceConformanceTests : IAsyncLifetime
{
    /// <summary>Ranges the read-after-write, write-zeroes and trim theories use; see <see cref="Range"/>.</summary>
    public static readonly TheoryData<string> WriteRanges = new()
    {
        "first sector",
        "one sector",
        "last sector",
        "several sectors not aligned to 4 KiB",
        "sectors straddling a block boundary",
        "exactly one block",
        "several blocks from mid-block",
        "last block through the end",
    };

    /// <summary>Ranges (strictly inside the device) the map theory uses; see <see cref="Range"/>.</summary>
    public static readonly TheoryData<string> MapRanges = new()
    {
        "whole device",
        "one sector",
        "last sector",
        "sectors straddling a block boundary",
        "several blocks from mid-block",
        "last block through the end",
    };

    /// <summary>Every (operation, bad request) pair the argument checks must refuse.</summary>
    public static readonly TheoryData<string, string> InvalidRequests = BuildInvalidRequests();

    /// <summary>The modifying operations a read-only device refuses.</summary>
    public static readonly TheoryData<string> ModifyingOperations = new() { "Write", "FUA write", "Trim", "WriteZeroes" };

    private const int Mib = 1 << 20;

    private readonly List<IBlockDevice> _devices = [];
    private IBlockDevice? _device;
    private TempDirectory? _temp;

    /// <summary>Sector size the suite asks the factories for.</summary>
    protected virtual int SectorSize => 512;

    /// <summary>Length of the device under test, in bytes; at least eight <see cref="BlockSize"/>s.</summary>
    protected virtual long DeviceLength => 16L * Mib;

    /// <summary>The implementation's allocation unit in bytes (a VHDX block); ranges are placed around its multiples.</summary>
    protected virtual int BlockSize => Mib;

    /// <summary>True when a trimmed range reads back as zeroes; otherwise each trimmed sector may read as its old
    /// data or zeroes.</summary>
    protected virtual bool TrimReadsZeroes => false;

    /// <summary>The writable device each test starts with, fresh (all zeroes), from <see cref="CreateDeviceAsync"/>.</summary>
    protected IBlockDevice Device => _device ?? throw new InvalidOperationException("InitializeAsync has not run.");

    /// <summary>A per-test temporary directory, created on first use and deleted after the test.</summary>
    protected TempDirectory Temp => _temp ??= new TempDirectory(GetType().Name);

    /// <inheritdoc/>
    public virtual async Task InitializeAsync()
    {
        if (DeviceLength < 8L * BlockSize || BlockSize % SectorSize != 0)
        {
            throw new InvalidOperationException(
                $"{GetType().Name}: DeviceLength {DeviceLength} must hold eight blocks of {BlockSize} bytes, " +
                $"and the block size must be a multiple of the {SectorSize}-byte sector.");
        }

        _device = Track(await CreateDeviceAsync(DeviceLength, SectorSize));
    }

    /// <inheritdoc/>
    public async Task DisposeAsync()
    {
        var failures = new List<Exception>();
        for (int i = _devices.Count - 1; i >= 0; i--)
        {
            try
            {
                await _devices[i].DisposeAsync();
            }
            catch (Exception ex)
            {
                failures.Add(ex);
            }
        }

        try
        {
            await CleanupAsync();
        }
        finally
        {
            _temp?.Dispose();
        }

        if (failures.Count > 0)
        {
            throw new AggregateException("Disposing the devices under test failed.", failures);
        }
    }

    /// <summary>Creates a writable device of <paramref name="length"/> bytes that reads as zeroes everywhere.</summary>
    protected abstract Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize);

    /// <summary>Creates a device with <see cref="IBlockDevice.IsReadOnly"/> set, e.g. by writing some data and
    /// reopening read-only. Content is arbitrary; tests check that refused requests leave it unchanged.</summary>
    protected abstract Task<IBlockDevice> CreateReadOnlyDeviceAsync(long length, int sectorSize);

    /// <summary>Releases what the factories created besides the devices; runs after every device is disposed,
    /// whether or not the test passed.</summary>
    protected virtual Task CleanupAsync() => Task.CompletedTask;

    [Fact]
    public void Length_and_sector_size_describe_the_device()
    {
        Assert.Equal(DeviceLength, Device.Length);
        Assert.Equal(SectorSize, Device.SectorSize);
        Assert.True(Device.SectorSize > 0 && (Device.SectorSize & (Device.SectorSize - 1)) == 0,
            $"Sector size {Device.SectorSize} is not a power of two.");
        Assert.Equal(0, Device.Length % Device.SectorSize);
        Assert.False(Device.IsReadOnly);
    }

    [Fact]
    public async Task Unwritten_range_reads_as_zeroes()
    {
        for (long offset = 0; offset < Device.Length; offset += BlockSize)
        {
            int length = (int)Math.Min(BlockSize, Device.Length - offset);
            DeviceAssert.Zeroes(await Device.ReadBytesAsync(offset, length), offset, SectorSize, "Fresh device");
        }
    }

    [Fact]
    public async Task Ranges_next_to_a_write_still_read_as_zeroes()
    {
        long offset = BlockSize + (7 * SectorSize);
        await Device.WriteAsync(offset, TestPatterns.Bytes(1, 3 * SectorSize));

        DeviceAssert.Zeroes(await Device.ReadBytesAsync(BlockSize, 7 * SectorSize), BlockSize, SectorSize, "Sectors before the write");
        long after = offset + (3 * SectorSize);
        DeviceAssert.Zeroes(await Device.ReadBytesAsync(after, (int)(2L * BlockSize - after)), after, SectorSize,
            "Rest of the block after the write");
        DeviceAssert.Zeroes(await Device.ReadBytesAsync(0, BlockSize), 0, SectorSize, "The block before");
    }

    [Theory]
    [MemberData(nameof(WriteRanges))]
    public async Task Read_returns_what_was_written(string range)
    {
        (long offset, long length) = Range(range);
        byte[] data = TestPatterns.Bytes(2, (int)length);

        await Device.WriteAsync(offset, data);

        await ExpectAsync(Device, offset, data, $"Read of {range} after write");
        await ExpectZeroesAroundAsync(Device, offset, length, $"Neighbours of {range}");
    }

    [Fact]
    public async Task Reads_at_any_sector_alignment_return_the_written_bytes()
    {
        const int sectors = 24;
        long offset = BlockSize - (sectors / 2 * SectorSize);
        byte[] data = TestPatterns.Bytes(3, sectors * SectorSize);
        await Device.WriteAsync(offset, data);

        // Sub-ranges from every start sector (lengths 1, 6, 11, ...), so reads split the write unlike how it was issued.
        for (int start = 0; start < sectors; start++)
        {
            for (int count = 1; start + count <= sectors; count += 5)
            {
                long at = offset + ((long)start * SectorSize);
                byte[] read = await Device.ReadBytesAsync(at, count * SectorSize);
                DeviceAssert.Bytes(data.AsSpan(start * SectorSize, count * SectorSize), read, at, SectorSize,
                    $"Read of sectors {start}..{start + count} of the write");
            }
        }
    }

    [Fact]
    public async Task Partial_overwrite_keeps_neighbours_intact()
    {
        long offset = BlockSize - (16 * SectorSize);
        byte[] expected = TestPatterns.Bytes(4, 32 * SectorSize);
        await Device.WriteAsync(offset, expected);

        // Overwrite 5 sectors across the block boundary: 3 before it, 2 after.
        byte[] patch = TestPatterns.Bytes(5, 5 * SectorSize);
        await Device.WriteAsync(BlockSize - (3 * SectorSize), patch);
        patch.CopyTo(expected.AsSpan(13 * SectorSize));

        await ExpectAsync(Device, offset, expected, "Overwritten range with its neighbours");
        await ExpectZeroesAroundAsync(Device, offset, expected.Length, "Outside both writes");
    }

    [Fact]
    public async Task Rewriting_a_range_returns_the_latest_data()
    {
        long offset = 2L * BlockSize + SectorSize;
        for (int round = 0; round < 4; round++)
        {
            byte[] data = TestPatterns.Bytes(10 + round, 9 * SectorSize);
            await Device.WriteAsync(offset, data);
            await ExpectAsync(Device, offset, data, $"Round {round} of rewriting");
        }
    }

    [Theory]
    [MemberData(nameof(WriteRanges))]
    public async Task Write_zeroes_makes_the_range_read_zeroes_and_keeps_neighbours(string range)
    {
        (long offset, long length, long regionOffset, byte[] region) = await FillAroundAsync(range, seed: 20);

        await Device.WriteZeroesAsync(offset, length);

        region.AsSpan((int)(offset - regionOffset), (int)length).Clear();
        await ExpectAsync(Device, regionOffset, region, $"Write-zeroes of {range} and its neighbours");
    }

    [Fact]
    public async Task Write_zeroes_over_unwritten_range_reads_zeroes()
    {
        await Device.WriteZeroesAsync(BlockSize - SectorSize, BlockSize);

        DeviceAssert.Zeroes(await Device.ReadBytesAsync(0, 3 * BlockSize), 0, SectorSize, "First three blocks");
    }

    [Theory]
    [MemberData(nameof(WriteRanges))]
    public async Task Write_after_write_zeroes_reads_the_new_data(string range)
    {
        (long offset, long length) = Range(range);
        await Device.WriteAsync(offset, TestPatterns.Bytes(30, (int)length));
        await Device.WriteZeroesAsync(offset, length);

        byte[] data = TestPatterns.Bytes(31, (int)length);
        await Device.WriteAsync(offset, data);

        await ExpectAsync(Device, offset, data, $"Write of {range} after write-zeroes");
    }

    [Theory]
    [MemberData(nameof(WriteRanges))]
    public async Task Trim_never_changes_data_outside_its_range(string range)
    {
        (long offset, long length, long regionOffset, byte[] region) = await FillAroundAsync(range, seed: 40);

        await Device.TrimAsync(offset, length);

        byte[] read = await Device.ReadBytesAsync(regionOffset, region.Length);
        int inside = (int)(offset - regionOffset);
        DeviceAssert.Bytes(region.AsSpan(0, inside), read.AsSpan(0, inside), regionOffset, SectorSize, $"Data before the trim of {range}");
        int end = inside + (int)length;
        DeviceAssert.Bytes(region.AsSpan(end), read.AsSpan(end), regionOffset + end, SectorSize, $"Data after the trim of {range}");
        ExpectTrimmed(region.AsSpan(inside, (int)length), read.AsSpan(inside, (int)length), offset, range);
    }

    [Theory]
    [MemberData(nameof(WriteRanges))]
    public async Task Write_after_trim_reads_the_new_data(string range)
    {
        (long offset, long length) = Range(range);
        await Device.WriteAsync(offset, TestPatterns.Bytes(50, (int)length));
        await Device.TrimAsync(offset, length);

        byte[] data = TestPatterns.Bytes(51, (int)length);
        await Device.WriteAsync(offset, data);

        await ExpectAsync(Device, offset, data, $"Write of {range} after trim");
    }

    [Fact]
    public async Task Partial_trim_of_a_write_keeps_the_untrimmed_sectors()
    {
        long offset = BlockSize - (8 * SectorSize);
        byte[] data = TestPatterns.Bytes(52, 16 * SectorSize);
        await Device.WriteAsync(offset, data);

        // Trim the middle 6 sectors; the 5 on either side must survive untouched.
        await Device.TrimAsync(offset + (5 * SectorSize), 6 * SectorSize);

        byte[] read = await Device.ReadBytesAsync(offset, data.Length);
        DeviceAssert.Bytes(data.AsSpan(0, 5 * SectorSize), read.AsSpan(0, 5 * SectorSize), offset, SectorSize, "Sectors before the trim");
        DeviceAssert.Bytes(data.AsSpan(11 * SectorSize), read.AsSpan(11 * SectorSize), offset + (11 * SectorSize), SectorSize,
            "Sectors after the trim");
        ExpectTrimmed(data.AsSpan(5 * SectorSize, 6 * SectorSize), read.AsSpan(5 * SectorSize, 6 * SectorSize),
            offset + (5 * SectorSize), "the middle sectors");
    }

    [Fact]
    public async Task Flush_after_writes_keeps_the_data()
    {
        byte[] first = TestPatterns.Bytes(60, 3 * SectorSize);
        byte[] second = TestPatterns.Bytes(61, BlockSize + (2 * SectorSize));
        await Device.WriteAsync(0, first);
        await Device.WriteAsync(2L * BlockSize - SectorSize, second);

        await Device.FlushAsync();
        await Device.FlushAsync();

        await ExpectAsync(Device, 0, first, "First write after flush");
        await ExpectAsync(Device, 2L * BlockSize - SectorSize, second, "Second write after flush");
        await ExpectZeroesAroundAsync(Device, 2L * BlockSize - SectorSize, second.Length, "Around the second write");
    }

    [Fact]
    public async Task Flush_of_an_unwritten_device_succeeds()
    {
        await Device.FlushAsync();

        DeviceAssert.Zeroes(await Device.ReadBytesAsync(0, BlockSize), 0, SectorSize, "First block after flush");
    }

    [Theory]
    [MemberData(nameof(WriteRanges))]
    public async Task Fua_write_reads_back(string range)
    {
        (long offset, long length) = Range(range);
        byte[] data = TestPatterns.Bytes(70, (int)length);

        await Device.WriteAsync(offset, data, forceUnitAccess: true);

        await ExpectAsync(Device, offset, data, $"FUA write of {range}");
        await ExpectZeroesAroundAsync(Device, offset, length, $"Neighbours of the FUA write of {range}");
    }

    [Fact]
    public async Task Fua_write_over_an_unflushed_write_wins()
    {
        long offset = BlockSize + (3 * SectorSize);
        await Device.WriteAsync(offset, TestPatterns.Bytes(71, 8 * SectorSize));
        byte[] fua = TestPatterns.Bytes(72, 4 * SectorSize);

        await Device.WriteAsync(offset + (2 * SectorSize), fua, forceUnitAccess: true);
        await Device.FlushAsync();

        await ExpectAsync(Device, offset + (2 * SectorSize), fua, "FUA write over an earlier write");
    }

    [Theory]
    [MemberData(nameof(MapRanges))]
    public async Task Map_extents_cover_exactly_the_requested_range(string range)
    {
        await WriteMixedContentAsync();
        (long offset, long length) = Range(range);

        IReadOnlyList<Extent> extents = await Device.MapToListAsync(offset, length);

        DeviceAssert.ExtentsCover(extents, offset, length, SectorSize);
    }

    [Fact]
    public async Task Map_of_a_fresh_device_covers_it_and_reads_as_zeroes()
    {
        IReadOnlyList<Extent> extents = await Device.MapToListAsync(0, Device.Length);

        DeviceAssert.ExtentsCover(extents, 0, Device.Length, SectorSize);
        await ExpectHoleAndZeroExtentsReadZeroesAsync(extents);
    }

    [Fact]
    public async Task Ranges_mapped_as_hole_or_zero_read_as_zeroes()
    {
        await WriteMixedContentAsync();

        IReadOnlyList<Extent> extents = await Device.MapToListAsync(0, Device.Length);

        DeviceAssert.ExtentsCover(extents, 0, Device.Length, SectorSize);
        await ExpectHoleAndZeroExtentsReadZeroesAsync(extents);
    }

    [Fact]
    public async Task Written_range_is_mapped_as_data()
    {
        IReadOnlyList<(long Offset, long Length)> written = await WriteMixedContentAsync();

        IReadOnlyList<Extent> whole = await Device.MapToListAsync(0, Device.Length);
        foreach ((long offset, long length) in written)
        {
            // Every written sector holds random (non-zero) bytes, so neither Hole nor Zero may describe it.
            foreach (Extent extent in whole.Where(e => e.Offset < offset + length && offset < e.End))
            {
                Assert.True(extent.Kind == ExtentKind.Data,
                    $"Written range [{offset}, +{length}) overlaps extent [{extent.Offset}, +{extent.Length}) mapped {extent.Kind}.");
            }

            IReadOnlyList<Extent> exact = await Device.MapToListAsync(offset, length);
            DeviceAssert.ExtentsCover(exact, offset, length, SectorSize);
            Assert.All(exact, e => Assert.Equal(ExtentKind.Data, e.Kind));
        }
    }

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public async Task Invalid_request_throws_and_changes_nothing(string operation, string request)
    {
        (long offset, long length, byte[] Data)[] areas = await WriteGuardAreasAsync();
        (long badOffset, long badLength) = InvalidRange(request);

        Func<Task> call = operation switch
        {
            "Read" => () => Device.ReadAsync(badOffset, new byte[badLength]).AsTask(),
            "Write" => () => Device.WriteAsync(badOffset, TestPatterns.Bytes(80, (int)badLength)).AsTask(),
            "Trim" => () => Device.TrimAsync(badOffset, badLength).AsTask(),
            "WriteZeroes" => () => Device.WriteZeroesAsync(badOffset, badLength).AsTask(),
            "Map" => () => Device.MapToListAsync(badOffset, badLength),
            _ => throw new ArgumentOutOfRangeException(nameof(operation), operation, null),
        };

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(call);
        foreach ((long offset, long length, byte[] data) in areas)
        {
            await ExpectAsync(Device, offset, data, $"Content at [{offset}, +{length}) after a refused {operation} ({request})");
        }
    }

    [Fact]
    public async Task Read_only_device_reports_itself_and_reads()
    {
        IBlockDevice device = Track(await CreateReadOnlyDeviceAsync(DeviceLength, SectorSize));

        Assert.True(device.IsReadOnly);
        Assert.Equal(DeviceLength, device.Length);
        Assert.Equal(SectorSize, device.SectorSize);
        byte[] first = await device.ReadAllBytesAsync();
        byte[] second = await device.ReadAllBytesAsync();
        DeviceAssert.Bytes(first, second, 0, SectorSize, "Two reads of a read-only device");
    }

    [Theory]
    [MemberData(nameof(ModifyingOperations))]
    public async Task Read_only_device_refuses_modification_and_changes_nothing(string operation)
    {
        IBlockDevice device = Track(await CreateReadOnlyDeviceAsync(DeviceLength, SectorSize));
        byte[] before = await device.ReadAllBytesAsync();

        foreach ((long offset, long length) in new (long, long)[] { (0, SectorSize), (BlockSize - SectorSize, BlockSize + (2L * SectorSize)) })
        {
            Func<Task> call = operation switch
            {
                "Write" => () => device.WriteAsync(offset, TestPatterns.Bytes(90, (int)length)).AsTask(),
                "FUA write" => () => device.WriteAsync(offset, TestPatterns.Bytes(91, (int)length), forceUnitAccess: true).AsTask(),
                "Trim" => () => device.TrimAsync(offset, length).AsTask(),
                "WriteZeroes" => () => device.WriteZeroesAsync(offset, length).AsTask(),
                _ => throw new ArgumentOutOfRangeException(nameof(operation), operation, null),
            };

            BlockDriverException refused = await Assert.ThrowsAsync<BlockDriverException>(call);
            Assert.Equal(ErrorKind.ReadOnly, refused.Kind);
        }

        await DeviceAssert.ContentAsync(device, 0, before, $"Read-only device after refused {operation}s");
    }

    [Fact]
    public async Task Concurrent_writers_and_readers_on_disjoint_regions_see_their_own_data()
    {
        const int tasks = 8;
        const int iterations = 60;
        long region = Math.Min(Device.Length / tasks, 4L * BlockSize) / SectorSize * SectorSize;
        int maxSectors = (int)Math.Min(region, 256 * 1024) / SectorSize;

        byte[][] models = await Task.WhenAll(Enumerable.Range(0, tasks).Select(task => Task.Run(async () =>
        {
            var rng = new Random(1000 + task);
            long regionOffset = task * region;
            byte[] model = new byte[region];
            for (int i = 0; i < iterations; i++)
            {
                int sectors = rng.Next(1, maxSectors + 1);
                int start = rng.Next(0, (int)(region / SectorSize) - sectors + 1) * SectorSize;
                int length = sectors * SectorSize;
                switch (rng.Next(5))
                {
                    case 0:
                        await Device.WriteZeroesAsync(regionOffset + start, length);
                        model.AsSpan(start, length).Clear();
                        break;
                    case 1:
                        await Device.FlushAsync();
                        break;
                    default:
                        byte[] data = new byte[length];
                        TestPatterns.Fill(data, rng.NextInt64());
                        await Device.WriteAsync(regionOffset + start, data, forceUnitAccess: rng.Next(4) == 0);
                        data.CopyTo(model.AsSpan(start));
                        break;
                }

                int readSectors = rng.Next(1, maxSectors + 1);
                int readStart = rng.Next(0, (int)(region / SectorSize) - readSectors + 1) * SectorSize;
                byte[] read = await Device.ReadBytesAsync(regionOffset + readStart, readSectors * SectorSize);
                DeviceAssert.Bytes(model.AsSpan(readStart, read.Length), read, regionOffset + readStart, SectorSize,
                    $"Task {task}, iteration {i}");
            }

            return model;
        })));

        for (int task = 0; task < tasks; task++)
        {
            await ExpectAsync(Device, task * region, models[task], $"Region of task {task} after all tasks finished");
        }
    }

    [Fact]
    public async Task Concurrent_writers_of_interleaved_sectors_in_the_same_blocks_keep_their_data()
    {
        // Sector n belongs to task n % 8: every block is written by all tasks at once, which races whatever the
        // implementation does when a block is first allocated.
        const int tasks = 8;
        const int iterations = 200;
        int length = 2 * BlockSize;
        long offset = BlockSize;
        int sectors = length / SectorSize;
        byte[] model = new byte[length];

        await Task.WhenAll(Enumerable.Range(0, tasks).Select(task => Task.Run(async () =>
        {
            var rng = new Random(2000 + task);
            byte[] data = new byte[SectorSize];
            for (int i = 0; i < iterations; i++)
            {
                int sector = (rng.Next(sectors / tasks) * tasks) + task;
                int at = sector * SectorSize;
                if (rng.Next(6) == 0)
                {
                    await Device.WriteZeroesAsync(offset + at, SectorSize);
                    Array.Clear(model, at, SectorSize);
                }
                else
                {
                    TestPatterns.Fill(data, rng.NextInt64());
                    await Device.WriteAsync(offset + at, data, forceUnitAccess: rng.Next(8) == 0);
                    data.CopyTo(model, at);
                }

                byte[] read = await Device.ReadBytesAsync(offset + at, SectorSize);
                DeviceAssert.Bytes(model.AsSpan(at, SectorSize), read, offset + at, SectorSize, $"Task {task}, iteration {i}");
            }
        })));

        await ExpectAsync(Device, offset, model, "Interleaved sectors after all tasks finished");
        await ExpectZeroesAroundAsync(Device, offset, length, "Blocks around the interleaved writes");
    }

    /// <summary>Names a range of the device under test as (offset, length) in bytes.</summary>
    protected (long Offset, long Length) Range(string name)
    {
        long s = SectorSize;
        long b = BlockSize;
        long l = DeviceLength;
        return name switch
        {
            "whole device" => (0, l),
            "first sector" => (0, s),
            "one sector" => ((37 * s) + b, s),
            "last sector" => (l - s, s),
            // With 512-byte sectors this starts 512 bytes past a 4 KiB boundary and is 3.5 KiB long.
            "several sectors not aligned to 4 KiB" => ((3 * 4096) + s, 7 * s),
            "sectors straddling a block boundary" => (b - (3 * s), 6 * s),
            "exactly one block" => (b, b),
            // A multi-MiB write for 1 MiB blocks: from the middle of block 0 into block 2.
            "several blocks from mid-block" => ((b / 2) + s, Math.Min((2 * b) + (5 * s), l / 2)),
            "last block through the end" => (l - b - (3 * s), b + (3 * s)),
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, "Unknown range name."),
        };
    }

    /// <summary>Keeps <paramref name="device"/> for disposal at the end of the test and returns it.</summary>
    protected IBlockDevice Track(IBlockDevice device)
    {
        _devices.Add(device);
        return device;
    }

    private static TheoryData<string, string> BuildInvalidRequests()
    {
        var data = new TheoryData<string, string>();
        string[] requests =
        [
            "negative offset", "offset past the end", "length crossing the end", "offset near long.MaxValue",
            "offset not sector-aligned", "offset half a sector", "length not sector-aligned", "length half a sector",
            "negative length", "length near long.MaxValue",
        ];
        foreach (string operation in new[] { "Read", "Write", "Trim", "WriteZeroes", "Map" })
        {
            foreach (string request in requests)
            {
                // A buffer cannot have a negative or huge length, so reads and writes skip those two.
                bool bufferLength = operation is "Read" or "Write";
                if (!(bufferLength && request is "negative length" or "length near long.MaxValue"))
                {
                    data.Add(operation, request);
                }
            }
        }

        return data;
    }

    private (long Offset, long Length) InvalidRange(string request)
    {
        long s = SectorSize;
        long b = BlockSize;
        long l = DeviceLength;
        long maxAligned = long.MaxValue / s * s;
        return request switch
        {
            "negative offset" => (-s, s),
            "offset past the end" => (l + s, s),
            "length crossing the end" => (l - s, 2 * s),
            // offset + length overflows a long: a check written as "offset + length > Length" lets it through.
            "offset near long.MaxValue" => (maxAligned, s),
            "length near long.MaxValue" => (s, maxAligned),
            "offset not sector-aligned" => (b + 1, s),
            "offset half a sector" => (b + (s / 2), s),
            "length not sector-aligned" => (b, s + 1),
            "length half a sector" => (b, s / 2),
            "negative length" => (b, -s),
            _ => throw new ArgumentOutOfRangeException(nameof(request), request, "Unknown request name."),
        };
    }

    // Fills the range named by `range` and a few sectors on either side with data, and returns what was written.
    private async Task<(long Offset, long Length, long RegionOffset, byte[] Region)> FillAroundAsync(string range, int seed)
    {
        (long offset, long length) = Range(range);
        long regionOffset = Math.Max(0, offset - (8L * SectorSize));
        long regionEnd = Math.Min(DeviceLength, offset + length + (8L * SectorSize));
        byte[] region = TestPatterns.Bytes(seed, (int)(regionEnd - regionOffset));
        await Device.WriteAsync(regionOffset, region);
        return (offset, length, regionOffset, region);
    }

    // Known data at the start, around the first block boundary and at the end, where invalid requests point.
    private async Task<(long Offset, long Length, byte[] Data)[]> WriteGuardAreasAsync()
    {
        const int size = 64 * 1024;
        (long Offset, long Length, byte[] Data)[] areas =
        [
            (0, size, TestPatterns.Bytes(81, size)),
            (BlockSize - (size / 2), size, TestPatterns.Bytes(82, size)),
            (DeviceLength - size, size, TestPatterns.Bytes(83, size)),
        ];
        foreach ((long offset, _, byte[] data) in areas)
        {
            await Device.WriteAsync(offset, data);
        }

        return areas;
    }

    // Data, zeroed and trimmed ranges in blocks 0 to 5 and at the end; returns the ranges that still hold data.
    private async Task<IReadOnlyList<(long Offset, long Length)>> WriteMixedContentAsync()
    {
        long s = SectorSize;
        long b = BlockSize;
        int seed = 100;
        foreach ((long offset, long length) in new (long, long)[] { (0, 3 * s), (b - (2 * s), 7 * s), (2 * b, b), (3 * b, b), (DeviceLength - s, s) })
        {
            await Device.WriteAsync(offset, TestPatterns.Bytes(seed++, (int)length));
        }

        // Block 2 zeroed but for 4 sectors at either end, block 3's last 16 sectors trimmed, block 5 zeroed unwritten.
        await Device.WriteZeroesAsync((2 * b) + (4 * s), b - (8 * s));
        await Device.TrimAsync((4 * b) - (16 * s), 16 * s);
        await Device.WriteZeroesAsync(5 * b, b);
        return
        [
            (0, 3 * s),
            (b - (2 * s), 7 * s),
            (2 * b, 4 * s),
            ((3 * b) - (4 * s), 4 * s),
            (3 * b, b - (16 * s)),
            (DeviceLength - s, s),
        ];
    }

    private async Task ExpectHoleAndZeroExtentsReadZeroesAsync(IReadOnlyList<Extent> extents)
    {
        foreach (Extent extent in extents.Where(e => e.Kind != ExtentKind.Data))
        {
            for (long offset = extent.Offset; offset < extent.End; offset += BlockSize)
            {
                int length = (int)Math.Min(BlockSize, extent.End - offset);
                DeviceAssert.Zeroes(await Device.ReadBytesAsync(offset, length), offset, SectorSize,
                    $"Extent [{extent.Offset}, +{extent.Length}) mapped {extent.Kind}");
            }
        }
    }

    private void ExpectTrimmed(ReadOnlySpan<byte> old, ReadOnlySpan<byte> read, long offset, string what)
    {
        if (TrimReadsZeroes)
        {
            DeviceAssert.Zeroes(read, offset, SectorSize, $"Trimmed {what}");
            return;
        }

        for (int at = 0; at < read.Length; at += SectorSize)
        {
            ReadOnlySpan<byte> sector = read.Slice(at, SectorSize);
            Assert.True(sector.SequenceEqual(old.Slice(at, SectorSize)) || !sector.ContainsAnyExcept((byte)0),
                $"Trimmed {what}: sector {(offset + at) / SectorSize} reads neither its old data nor zeroes.");
        }
    }

    private async Task ExpectAsync(IBlockDevice device, long offset, byte[] expected, string what)
    {
        byte[] read = await device.ReadBytesAsync(offset, expected.Length);
        DeviceAssert.Bytes(expected, read, offset, SectorSize, what);
    }

    // The sector before and after the range must still read as zeroes (checks that writes do not spill over).
    private async Task ExpectZeroesAroundAsync(IBlockDevice device, long offset, long length, string what)
    {
        if (offset >= SectorSize)
        {
            DeviceAssert.Zeroes(await device.ReadBytesAsync(offset - SectorSize, SectorSize), offset - SectorSize, SectorSize,
                $"{what}: sector before");
        }

        if (offset + length + SectorSize <= device.Length)
        {
            DeviceAssert.Zeroes(await device.ReadBytesAsync(offset + length, SectorSize), offset + length, SectorSize,
                $"{what}: sector after");
        }
    }
}
