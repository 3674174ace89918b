using BlockDriver.Cli.Tests.Support;
using BlockDriver.Vhdx;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class ConvertCommandTests(ITestOutputHelper output) : CliTestBase(output)
{
    private const long MiB = TestImages.MiB;

    [Fact]
    public async Task Raw_to_vhdx_and_back_round_trips_byte_for_byte()
    {
        int seed = Random.Shared.Next();
        Output.WriteLine($"seed {seed}");
        var random = new Random(seed);
        var data = new List<(long, int, int)>();
        for (int i = 0; i < 12; i++)
        {
            // Random runs of 512 B to 1.5 MiB at sector-aligned offsets, holes in between.
            data.Add((random.NextInt64(0, 60 * 2048) * 512, random.Next(1, 3072) * 512, random.Next()));
        }

        TestImages.WriteRaw(PathOf("source.raw"), 64 * MiB, [.. data]);

        await RunOkAsync("img", "convert", "-O", "vhdx", "source.raw", "disk.vhdx");
        await RunOkAsync("img", "convert", "disk.vhdx", "back.raw");

        Assert.Equal(await File.ReadAllBytesAsync(PathOf("source.raw")), await File.ReadAllBytesAsync(PathOf("back.raw")));
        Assert.Contains("Images are identical.", (await RunOkAsync("img", "compare", "source.raw", "disk.vhdx")).Stdout, StringComparison.Ordinal);
        Assert.True(TestImages.Allocated(PathOf("back.raw")) <= TestImages.Allocated(PathOf("source.raw")), "the raw output is sparse");
    }

    [Fact]
    public async Task Zero_data_is_not_stored()
    {
        TestImages.WriteRaw(PathOf("source.raw"), 64 * MiB, (32 * MiB, 1 << 20, 5));
        using (var handle = File.OpenHandle(PathOf("source.raw"), FileMode.Open, FileAccess.Write))
        {
            RandomAccess.Write(handle, new byte[16 * MiB], 0);
        }

        await RunOkAsync("img", "convert", "-O", "vhdx", "source.raw", "disk.vhdx");

        Assert.True(TestImages.Allocated(PathOf("disk.vhdx")) < 4 * MiB, "16 MiB of written zeroes must not be copied");
        await RunOkAsync("img", "compare", "source.raw", "disk.vhdx");
    }

    [Fact]
    public async Task With_a_base_the_output_holds_only_the_differences()
    {
        TestImages.WriteRaw(PathOf("base.raw"), 64 * MiB, (0, 24 << 20, 1), (40 * MiB, 8 << 20, 2));
        await RunOkAsync("img", "convert", "-O", "vhdx", "base.raw", "base.vhdx");
        TestImages.CopyAndModify(PathOf("base.raw"), PathOf("new.raw"), (5 * MiB, 64 * 1024, 3), (41 * MiB + 512, 4096, 4), (60 * MiB, 8192, 5));
        using (var handle = File.OpenHandle(PathOf("new.raw"), FileMode.Open, FileAccess.Write))
        {
            // Zeroes over the base's data must be kept too.
            RandomAccess.Write(handle, new byte[1 << 20], 10 * MiB);
        }

        await RunOkAsync("img", "convert", "-B", "base.vhdx", "new.raw", "child.vhdx");

        long child = TestImages.Allocated(PathOf("child.vhdx"));
        long full = TestImages.Allocated(PathOf("base.vhdx"));
        Output.WriteLine($"child {child} bytes on disk, base {full}");
        Assert.True(child * 8 < full, $"the child ({child} bytes) should be far smaller than the full image ({full} bytes)");
        Assert.Contains("Images are identical.", (await RunOkAsync("img", "compare", "new.raw", "child.vhdx")).Stdout, StringComparison.Ordinal);
        await using VhdxDisk disk = VhdxDisk.Open(PathOf("child.vhdx"), new VhdxOpenOptions { ReadOnly = true });
        Assert.Equal(PathOf("base.vhdx"), disk.Files[1].Path);
    }

    [Fact]
    public async Task Base_of_another_size_is_refused_and_nothing_is_left_behind()
    {
        await RunOkAsync("img", "create", "base.vhdx", "32M");
        TestImages.WriteRaw(PathOf("source.raw"), 16 * MiB, (0, 4096, 1));

        ProcessResult result = await RunAsync("img", "convert", "-B", "base.vhdx", "source.raw", "child.vhdx");

        AssertError(result, 1, "-B needs a base of the source's size");
        Assert.Equal(["base.vhdx", "source.raw"], Directory.GetFiles(Temp.FullName).Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task Existing_destination_is_replaced()
    {
        TestImages.WriteRaw(PathOf("source.raw"), 4 * MiB, (MiB, 4096, 1));
        await File.WriteAllTextAsync(PathOf("out.raw"), "old");

        await RunOkAsync("img", "convert", "source.raw", "out.raw");

        Assert.Equal(await File.ReadAllBytesAsync(PathOf("source.raw")), await File.ReadAllBytesAsync(PathOf("out.raw")));
    }

    [Fact]
    public async Task Converting_onto_the_source_is_refused()
    {
        TestImages.WriteRaw(PathOf("source.raw"), 4 * MiB, (MiB, 4096, 1));
        byte[] before = await File.ReadAllBytesAsync(PathOf("source.raw"));

        ProcessResult result = await RunAsync("img", "convert", "-O", "raw", "source.raw", "./source.raw");

        AssertError(result, 1, "must not be the source");
        Assert.Equal(before, await File.ReadAllBytesAsync(PathOf("source.raw")));
    }

    [Fact]
    public async Task Missing_source_is_an_error_and_creates_nothing()
    {
        ProcessResult result = await RunAsync("img", "convert", "-O", "vhdx", "nothing.raw", "out.vhdx");

        AssertError(result, 1, "no such file");
        Assert.Empty(Directory.GetFiles(Temp.FullName));
    }
}
