using System.Buffers.Binary;
using System.Text.Json;
using BlockDriver.Abstractions;
using BlockDriver.Vhdx.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Vhdx.Tests;

/// <summary>Files we write are read by the real qemu-img/qemu-io byte for byte, files qemu writes are read by us,
/// and a log entry we leave behind is one qemu replays. qemu is the reference implementation at hand: it reads and
/// writes dynamic and fixed files with 512-byte sectors (it cannot open differencing files; LayoutTests checks
/// those against the spec instead).</summary>
public sealed class InteropQemuTests : IDisposable
{
    private const int MiB = 1 << 20;

    private readonly ITestOutputHelper _output;
    private readonly ScratchDirectory _dir = new("bd-qemu");

    public InteropQemuTests(ITestOutputHelper output)
    {
        _output = output;
    }

    public void Dispose() => _dir.Dispose();

    // ---- (a) we write, qemu reads ----------------------------------------------------------------------------

    [Theory]
    [InlineData(64L * MiB, 1 * MiB, 1)]
    [InlineData((48L * MiB) + (7 * 512), 2 * MiB, 2)] // not a whole number of blocks
    [InlineData(256L * MiB, 32 * MiB, 3)]
    [InlineData(1L << 30, 1 * MiB, 4)] // 1024 blocks
    public async Task Qemu_reads_what_we_write(long size, int blockSize, int seed)
    {
        string vhdx = _dir.File("ours.vhdx");
        string raw = _dir.File("expected.raw");
        VhdxFile.CreateDynamic(vhdx, size, new VhdxCreateOptions { BlockSize = blockSize, LogicalSectorSize = 512 });
        var model = new Dictionary<long, byte[]>();
        await using (VhdxDisk disk = VhdxDisk.Open(vhdx))
        {
            await RunWorkloadAsync(disk, model, seed, blockSize);
            await AssertDiskEqualsModelAsync(disk, model, "our own read-back before close");
        }

        WriteSparseRaw(raw, size, model);

        QemuTools.Result check = await QemuTools.ImgOkAsync("check", "-f", "vhdx", vhdx);
        _output.WriteLine(check.Stdout);
        await QemuTools.ImgOkAsync("compare", "-f", "vhdx", "-F", "raw", vhdx, raw);
        JsonElement info = await QemuTools.InfoAsync(vhdx);
        Assert.Equal(size, info.GetProperty("virtual-size").GetInt64());
        Assert.Equal(blockSize, info.GetProperty("cluster-size").GetInt64());
    }

    // ---- (b) qemu writes, we read ----------------------------------------------------------------------------

    [Theory]
    [InlineData("")]
    [InlineData("block_size=1M")]
    [InlineData("subformat=fixed")]
    [InlineData("subformat=fixed,block_state_zero=off")]
    public async Task We_read_what_qemu_convert_writes(string options)
    {
        const long Size = 64L * MiB;
        string source = _dir.File("source.raw");
        string vhdx = _dir.File("qemu.vhdx");
        var model = new Dictionary<long, byte[]>();
        var random = new Random(options.Length + 1);
        for (int i = 0; i < 24; i++)
        {
            // Data runs of 4 KiB to 3 MiB at sector offsets; everything else stays a hole.
            long offset = random.NextInt64(Size / 512) * 512;
            int length = (int)Math.Min(Size - offset, random.Next(8, 6 * 1024) * 512);
            Apply(model, offset, Bytes(random, length));
        }

        WriteSparseRaw(source, Size, model);
        var args = new List<string> { "convert", "-f", "raw", "-O", "vhdx" };
        if (options.Length > 0)
        {
            args.AddRange(["-o", options]);
        }

        args.AddRange([source, vhdx]);
        await QemuTools.ImgOkAsync([.. args]);

        await AssertWeReadAsync(vhdx, source);
        await AssertWeCanWriteAndQemuStillReadsAsync(vhdx, seed: 5);
    }

    [Theory]
    [InlineData("")] // block_state_zero on: blocks start as ZERO
    [InlineData("block_state_zero=off")] // blocks start as NOT_PRESENT
    [InlineData("block_size=1M")]
    [InlineData("subformat=fixed")]
    [InlineData("subformat=fixed,block_state_zero=off")]
    public async Task We_read_what_qemu_io_writes(string options)
    {
        string vhdx = _dir.File("qemu.vhdx");
        var args = new List<string> { "create", "-f", "vhdx" };
        if (options.Length > 0)
        {
            args.AddRange(["-o", options]);
        }

        args.AddRange([vhdx, "64M"]);
        await QemuTools.ImgOkAsync([.. args]);
        await QemuTools.IoOkAsync(vhdx,
            "write -P 0xab 0 64k",
            "write -P 0xcd 1048064 1024", // across the first 1 MiB boundary
            "write -P 0x11 8M 8M", // a whole 8 MiB block (qemu's default block size)
            "write -P 0x22 20971520 4096",
            "write -z 8M 4M", // zeroes over data
            "write -P 0x33 67104768 4096"); // the last 4 KiB

        string expected = _dir.File("expected.raw");
        await QemuTools.ImgOkAsync("convert", "-f", "vhdx", "-O", "raw", vhdx, expected);
        byte[] raw = await File.ReadAllBytesAsync(expected);
        Assert.True(raw.AsSpan(0, 64 * 1024).IndexOfAnyExcept((byte)0xab) < 0, "qemu's own conversion lost its write");

        await AssertWeReadAsync(vhdx, expected);
        await AssertWeCanWriteAndQemuStillReadsAsync(vhdx, seed: 6);
    }

    // ---- (c) our log, qemu's replay --------------------------------------------------------------------------

    [Fact]
    public async Task Qemu_replays_a_log_entry_we_left_unapplied()
    {
        const long Size = 64L * MiB;
        string vhdx = _dir.File("pending.vhdx");
        VhdxFile.CreateDynamic(vhdx, Size, new VhdxCreateOptions { BlockSize = MiB });
        var model = new Dictionary<long, byte[]>();
        var random = new Random(7);
        await using (VhdxDisk disk = VhdxDisk.Open(vhdx))
        {
            await WriteAsync(disk, model, 0, Bytes(random, 3 * MiB));
            await WriteAsync(disk, model, 40L * MiB, Bytes(random, 64 * 1024));
        }

        // A session that dies after its log entry is durable and before the entry's pages are in place: the new
        // blocks' data is on disk, but only the log says where.
        VhdxDisk writer = VhdxDisk.Open(vhdx);
        try
        {
            writer.Top.FailAfterLogWrite = true;
            await WriteAsync(writer, model, 1L * MiB, Bytes(random, 4096)); // into an existing block
            await WriteAsync(writer, model, 10L * MiB, Bytes(random, 2 * MiB)); // two new blocks
            await WriteAsync(writer, model, 63L * MiB, Bytes(random, 512)); // a new last block
            await writer.WriteZeroesAsync(40L * MiB, MiB); // an existing block to ZERO
            Apply(model, 40L * MiB, new byte[MiB]);
            await Assert.ThrowsAsync<IOException>(async () => await writer.Top.CommitAsync());
        }
        finally
        {
            // After the injected failure the file refuses further work and closing skips the commit.
            await writer.DisposeAsync();
        }

        string expected = _dir.File("expected.raw");
        WriteSparseRaw(expected, Size, model);
        Assert.NotEqual(Guid.Empty, ReadLogGuid(vhdx));

        // qemu refuses a read-only open of a file whose log needs replaying: proof the entry is pending.
        QemuTools.Result refused = await QemuTools.ImgAsync("info", "-f", "vhdx", vhdx);
        Assert.True(refused.ExitCode != 0, $"qemu-img info opened a file with a pending log: {refused}");
        _output.WriteLine(refused.ToString());

        string forQemu = _dir.File("qemu-copy.vhdx");
        string forReadOnly = _dir.File("ro-copy.vhdx");
        string forWritable = _dir.File("rw-copy.vhdx");
        foreach (string copy in new[] { forQemu, forReadOnly, forWritable })
        {
            File.Copy(vhdx, copy);
        }

        QemuTools.Result repair = await QemuTools.ImgAsync("check", "-r", "all", "-f", "vhdx", forQemu);
        _output.WriteLine(repair.ToString());
        Assert.True(repair.ExitCode == 0, $"qemu-img check -r all failed: {repair}");
        Assert.Equal(Guid.Empty, ReadLogGuid(forQemu));
        await QemuTools.ImgOkAsync("compare", "-f", "vhdx", "-F", "raw", forQemu, expected);

        string before = RawVhdx.Sha256(forReadOnly);
        await using (VhdxDisk disk = VhdxDisk.Open(forReadOnly, new VhdxOpenOptions { ReadOnly = true }))
        {
            Assert.True(disk.Top.ReplayedLog, "a read-only open did not replay the pending log in memory");
            await AssertDiskEqualsModelAsync(disk, model, "read-only open with the log replayed in memory");
        }

        Assert.Equal(before, RawVhdx.Sha256(forReadOnly));

        await using (VhdxDisk disk = VhdxDisk.Open(forWritable))
        {
            Assert.True(disk.Top.ReplayedLog, "a writable open did not replay the pending log");
            await AssertDiskEqualsModelAsync(disk, model, "writable open with the log replayed in place");
        }

        await QemuTools.ImgOkAsync("check", "-f", "vhdx", forWritable);
        await QemuTools.ImgOkAsync("compare", "-f", "vhdx", "-F", "raw", forWritable, expected);
    }

    // ---- (d) 4096-byte logical sectors -----------------------------------------------------------------------

    [Theory]
    [InlineData(1 * MiB)]
    [InlineData(32 * MiB)]
    public async Task Files_with_4096_byte_sectors_round_trip(int blockSize)
    {
        // qemu opens only 512-byte-sector VHDX files, so these are checked against our own reader and a model.
        const long Size = 96L * MiB;
        string basePath = _dir.File("base4k.vhdx");
        string childPath = _dir.File("child4k.vhdx");
        VhdxFile.CreateDynamic(basePath, Size, new VhdxCreateOptions { BlockSize = blockSize, LogicalSectorSize = 4096, PhysicalSectorSize = 4096 });
        var model = new Dictionary<long, byte[]>();
        await using (VhdxDisk disk = VhdxDisk.Open(basePath))
        {
            Assert.Equal(4096, disk.SectorSize);
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await disk.WriteAsync(512, new byte[512]));
            await RunWorkloadAsync(disk, model, seed: 8, blockSize, sector: 4096);
        }

        await using (VhdxDisk disk = VhdxDisk.Open(basePath, new VhdxOpenOptions { ReadOnly = true }))
        {
            Assert.Equal(4096, disk.Top.LogicalSectorSize);
            await AssertDiskEqualsModelAsync(disk, model, "4096-byte-sector dynamic file after reopening");
        }

        await VhdxFile.CreateDifferencingAsync(childPath, basePath);
        await using (VhdxDisk disk = VhdxDisk.Open(childPath))
        {
            Assert.Equal(4096, disk.SectorSize);
            await RunWorkloadAsync(disk, model, seed: 9, blockSize, sector: 4096, trims: false);
        }

        await using (VhdxDisk disk = VhdxDisk.Open(childPath, new VhdxOpenOptions { ReadOnly = true }))
        {
            Assert.Equal(2, disk.Files.Count);
            await AssertDiskEqualsModelAsync(disk, model, "4096-byte-sector chain after reopening");
        }
    }

    // ---- Helpers ---------------------------------------------------------------------------------------------

    // Reads the qemu-made file with our library and compares it with the raw image qemu produced or read.
    private static async Task AssertWeReadAsync(string vhdx, string rawPath)
    {
        byte[] raw = await File.ReadAllBytesAsync(rawPath);
        string before = RawVhdx.Sha256(vhdx);
        await using (VhdxDisk disk = VhdxDisk.Open(vhdx, new VhdxOpenOptions { ReadOnly = true }))
        {
            Assert.Equal(raw.LongLength, disk.Length);
            byte[] actual = new byte[raw.Length];
            await disk.ReadAsync(0, actual);
            int same = actual.AsSpan().CommonPrefixLength(raw);
            Assert.True(same == raw.Length, $"our read of {Path.GetFileName(vhdx)} differs from qemu's raw image at offset {same}");

            long mapped = 0;
            await foreach (Extent extent in disk.MapAsync(0, disk.Length))
            {
                Assert.Equal(mapped, extent.Offset);
                if (extent.Kind != ExtentKind.Data)
                {
                    Assert.True(raw.AsSpan((int)extent.Offset, (int)extent.Length).IndexOfAnyExcept((byte)0) < 0, $"extent {extent} is mapped as zero but holds data");
                }

                mapped = extent.End;
            }

            Assert.Equal(disk.Length, mapped);
        }

        Assert.Equal(before, RawVhdx.Sha256(vhdx));
    }

    // Writes into the qemu-made file with our library (new blocks, existing blocks, ZERO blocks), then has qemu
    // check it and compare it with the expected content.
    private async Task AssertWeCanWriteAndQemuStillReadsAsync(string vhdx, int seed)
    {
        string expectedPath = _dir.File("after-our-writes.raw");
        await QemuTools.ImgOkAsync("convert", "-f", "vhdx", "-O", "raw", vhdx, expectedPath);
        byte[] expected = await File.ReadAllBytesAsync(expectedPath);
        var random = new Random(seed);
        await using (VhdxDisk disk = VhdxDisk.Open(vhdx))
        {
            for (int i = 0; i < 12; i++)
            {
                long offset = random.NextInt64(disk.Length / 512) * 512;
                byte[] data = Bytes(random, (int)Math.Min(disk.Length - offset, random.Next(1, 4096) * 512));
                await disk.WriteAsync(offset, data);
                data.CopyTo(expected.AsSpan((int)offset));
            }

            await disk.WriteZeroesAsync(16L * MiB, 8L * MiB);
            expected.AsSpan(16 * MiB, 8 * MiB).Clear();
        }

        await File.WriteAllBytesAsync(expectedPath, expected);
        await QemuTools.ImgOkAsync("check", "-f", "vhdx", vhdx);
        await QemuTools.ImgOkAsync("compare", "-f", "vhdx", "-F", "raw", vhdx, expectedPath);
    }

    // Random writes (some across block boundaries), write-zeroes and trims, mirrored in the model. Trims of a
    // dynamic file read back as zeroes in this implementation, which the read-back checks; in a differencing file
    // a trim may leave the parent's data visible, so chains get no trims.
    private static async Task RunWorkloadAsync(VhdxDisk disk, Dictionary<long, byte[]> model, int seed, int blockSize, int sector = 512, bool trims = true)
    {
        var random = new Random(seed);
        long sectors = disk.Length / sector;
        for (int i = 0; i < 60; i++)
        {
            long offset = random.NextInt64(sectors) * sector;
            long maxSectors = Math.Min(sectors - (offset / sector), random.Next(4) == 0 ? (Math.Min(3L * blockSize, 5L * MiB) / sector) + 2 : 64);
            int length = (int)(random.NextInt64(1, maxSectors + 1) * sector);
            int op = random.Next(10);
            if (op < 7)
            {
                await WriteAsync(disk, model, offset, Bytes(random, length));
            }
            else
            {
                if (op == 7 && disk.Length - offset >= blockSize)
                {
                    // A whole block, aligned: the ZERO state rather than zero bytes.
                    offset = offset / blockSize * blockSize;
                    length = blockSize;
                }

                if (op == 9 && trims)
                {
                    await disk.TrimAsync(offset, length);
                }
                else
                {
                    await disk.WriteZeroesAsync(offset, length);
                }

                Apply(model, offset, new byte[length]);
            }

            if (i % 20 == 19)
            {
                await disk.FlushAsync();
            }
        }
    }

    private static async Task WriteAsync(VhdxDisk disk, Dictionary<long, byte[]> model, long offset, byte[] data)
    {
        await disk.WriteAsync(offset, data);
        Apply(model, offset, data);
    }

    // The model is a map of 64 KiB chunks; missing chunks read as zeroes.
    private static void Apply(Dictionary<long, byte[]> model, long offset, ReadOnlySpan<byte> data)
    {
        const int Chunk = 64 * 1024;
        int done = 0;
        while (done < data.Length)
        {
            long position = offset + done;
            long chunk = position / Chunk;
            int inChunk = (int)(position % Chunk);
            int count = Math.Min(Chunk - inChunk, data.Length - done);
            if (!model.TryGetValue(chunk, out byte[]? bytes))
            {
                bytes = new byte[Chunk];
                model.Add(chunk, bytes);
            }

            data.Slice(done, count).CopyTo(bytes.AsSpan(inChunk));
            done += count;
        }
    }

    private static async Task AssertDiskEqualsModelAsync(VhdxDisk disk, Dictionary<long, byte[]> model, string what)
    {
        const int Chunk = 64 * 1024;
        byte[] buffer = new byte[4 * MiB];
        for (long offset = 0; offset < disk.Length; offset += buffer.Length)
        {
            int length = (int)Math.Min(buffer.Length, disk.Length - offset);
            await disk.ReadAsync(offset, buffer.AsMemory(0, length));
            for (int at = 0; at < length; at += Chunk)
            {
                int count = Math.Min(Chunk, length - at);
                ReadOnlySpan<byte> actual = buffer.AsSpan(at, count);
                ReadOnlySpan<byte> expected = model.TryGetValue((offset + at) / Chunk, out byte[]? bytes) ? bytes.AsSpan(0, count) : new byte[count];
                int same = actual.CommonPrefixLength(expected);
                Assert.True(same == count, $"{what}: differs from the model at virtual offset {offset + at + same}");
            }
        }
    }

    private static void WriteSparseRaw(string path, long size, Dictionary<long, byte[]> model)
    {
        const int Chunk = 64 * 1024;
        using var handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite);
        RandomAccess.SetLength(handle, size);
        foreach ((long chunk, byte[] bytes) in model)
        {
            long offset = chunk * Chunk;
            int count = (int)Math.Min(Chunk, size - offset);
            if (bytes.AsSpan(0, count).IndexOfAnyExcept((byte)0) >= 0)
            {
                RandomAccess.Write(handle, bytes.AsSpan(0, count), offset);
            }
        }
    }

    private static Guid ReadLogGuid(string path)
    {
        // The current header is the valid copy with the larger sequence number (both are valid here).
        byte[] h1 = RawVhdx.Read(path, RawVhdx.Header1Offset, 64);
        byte[] h2 = RawVhdx.Read(path, RawVhdx.Header2Offset, 64);
        byte[] current = BinaryPrimitives.ReadUInt64LittleEndian(h1.AsSpan(8)) > BinaryPrimitives.ReadUInt64LittleEndian(h2.AsSpan(8)) ? h1 : h2;
        return new Guid(current.AsSpan(48, 16));
    }

    private static byte[] Bytes(Random random, int length)
    {
        byte[] bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
