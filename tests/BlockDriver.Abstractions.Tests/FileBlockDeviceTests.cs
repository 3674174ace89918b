using BlockDriver.Interop;
using BlockDriver.Testing;

namespace BlockDriver.Abstractions.Tests;

/// <summary>What the conformance suite cannot say about <see cref="FileBlockDevice"/>: that the raw file stays sparse,
/// and how opening validates the file.</summary>
public sealed class FileBlockDeviceTests : IDisposable
{
    private const int Mib = 1 << 20;
    private readonly TempDirectory _temp = new(nameof(FileBlockDeviceTests));

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Write_zeroes_punches_holes_in_the_file()
    {
        string path = _temp.GetFilePath("zeroes.raw");
        await using FileBlockDevice device = FileBlockDevice.Create(path, 8 * Mib);
        await device.WriteAsync(0, TestPatterns.Bytes(1, 4 * Mib));
        await device.FlushAsync();
        long before = SparseFile.AllocatedBytes(path);
        Assert.True(before >= 4 * Mib, $"{before} bytes allocated after writing 4 MiB.");

        await device.WriteZeroesAsync(Mib, 2 * Mib);
        await device.FlushAsync();

        long after = SparseFile.AllocatedBytes(path);
        Assert.True(after <= before - (2 * Mib), $"Allocation went from {before} to {after} bytes after zeroing 2 MiB.");
        DeviceAssert.Zeroes(await device.ReadBytesAsync(Mib, 2 * Mib), Mib, 512, "Zeroed range");
    }

    [Fact]
    public async Task Trim_punches_holes_in_the_file()
    {
        string path = _temp.GetFilePath("trim.raw");
        await using FileBlockDevice device = FileBlockDevice.Create(path, 8 * Mib);
        await device.WriteAsync(2 * Mib, TestPatterns.Bytes(2, 2 * Mib));
        await device.FlushAsync();
        long before = SparseFile.AllocatedBytes(path);

        await device.TrimAsync(2 * Mib, 2 * Mib);
        await device.FlushAsync();

        long after = SparseFile.AllocatedBytes(path);
        Assert.True(after <= before - (2 * Mib), $"Allocation went from {before} to {after} bytes after trimming 2 MiB.");
    }

    [Fact]
    public async Task Created_file_is_sparse_and_maps_as_one_hole()
    {
        string path = _temp.GetFilePath("fresh.raw");
        await using FileBlockDevice device = FileBlockDevice.Create(path, 64 * Mib);

        Assert.Equal(64 * Mib, new FileInfo(path).Length);
        Assert.True(SparseFile.AllocatedBytes(path) < Mib, $"A fresh 64 MiB image allocates {SparseFile.AllocatedBytes(path)} bytes.");
        Assert.Equal([new Extent(0, 64 * Mib, ExtentKind.Hole)], await device.MapToListAsync(0, 64 * Mib));
    }

    [Fact]
    public async Task Map_reports_holes_for_unwritten_ranges_of_a_sparse_file()
    {
        string path = _temp.GetFilePath("map.raw");
        await using FileBlockDevice device = FileBlockDevice.Create(path, 8 * Mib);
        await device.WriteAsync(Mib, TestPatterns.Bytes(3, 64 * 1024));
        await device.WriteAsync(6 * Mib, TestPatterns.Bytes(4, Mib));
        await device.FlushAsync();

        IReadOnlyList<Extent> extents = await device.MapToListAsync(0, 8 * Mib);

        Assert.Equal(
            [
                new Extent(0, Mib, ExtentKind.Hole),
                new Extent(Mib, 64 * 1024, ExtentKind.Data),
                new Extent(Mib + (64 * 1024), (5 * Mib) - (64 * 1024), ExtentKind.Hole),
                new Extent(6 * Mib, Mib, ExtentKind.Data),
                new Extent(7 * Mib, Mib, ExtentKind.Hole),
            ],
            extents);
    }

    [Fact]
    public async Task Map_of_a_subrange_is_clipped_to_it()
    {
        string path = _temp.GetFilePath("clip.raw");
        await using FileBlockDevice device = FileBlockDevice.Create(path, 8 * Mib);
        await device.WriteAsync(Mib, TestPatterns.Bytes(5, Mib));

        IReadOnlyList<Extent> extents = await device.MapToListAsync(Mib + 4096, Mib);

        Assert.Equal([new Extent(Mib + 4096, Mib - 4096, ExtentKind.Data), new Extent(2 * Mib, 4096, ExtentKind.Hole)], extents);
    }

    [Fact]
    public async Task Reopened_file_holds_the_data_written_before_disposal()
    {
        string path = _temp.GetFilePath("reopen.raw");
        byte[] data = TestPatterns.Bytes(6, 3 * 512);
        await using (FileBlockDevice device = FileBlockDevice.Create(path, 4 * Mib))
        {
            await device.WriteAsync(Mib - 512, data);
        }

        await using FileBlockDevice reopened = FileBlockDevice.Open(path, readOnly: true);

        Assert.True(reopened.IsReadOnly);
        Assert.Equal(4 * Mib, reopened.Length);
        await DeviceAssert.ContentAsync(reopened, Mib - 512, data, "Reopened file");
    }

    [Fact]
    public void Open_of_a_missing_file_throws_not_found()
    {
        BlockDriverException error = Assert.Throws<BlockDriverException>(() => FileBlockDevice.Open(_temp.GetFilePath("missing.raw")));

        Assert.Equal(ErrorKind.NotFound, error.Kind);
    }

    [Fact]
    public void Open_rejects_a_file_whose_length_is_not_a_sector_multiple()
    {
        string path = _temp.GetFilePath("odd.raw");
        File.WriteAllBytes(path, new byte[4096 + 100]);

        BlockDriverException error = Assert.Throws<BlockDriverException>(() => FileBlockDevice.Open(path, readOnly: false, sectorSize: 4096));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-512L)]
    [InlineData(1000L)]
    public void Create_rejects_a_length_that_is_not_a_positive_sector_multiple(long length)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => FileBlockDevice.Create(_temp.GetFilePath("bad.raw"), length));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-512)]
    [InlineData(3)]
    [InlineData(1536)]
    public void Create_rejects_a_sector_size_that_is_not_a_power_of_two(int sectorSize)
    {
        // MemoryBlockDevice refuses these; BlockDeviceGuard's alignment mask (sectorSize - 1) is only right for powers of two.
        Assert.Throws<ArgumentOutOfRangeException>(() => FileBlockDevice.Create(_temp.GetFilePath("bad.raw"), 3 * 4096, sectorSize));
    }
}
