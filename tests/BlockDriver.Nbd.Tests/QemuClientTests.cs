using System.Text.Json;
using BlockDriver.Nbd.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests;

/// <summary>qemu-img and qemu-io against <c>blockdriver serve nbd</c>.</summary>
public sealed class QemuClientTests : RealClientFixture
{
    public QemuClientTests(ITestOutputHelper output)
        : base(output)
    {
    }

    [Fact]
    public async Task Qemu_io_pattern_writes_on_a_container_layer_are_what_the_layer_file_holds_offline()
    {
        await CreateChainAsync();
        string baseHash = Sha256(PathOf("base.vhdx"));
        await using (ServeProcess server = await ServeAsync("top.vhdx"))
        {
            ProcessResult io = await Tool.RunOkAsync(Output, "qemu-io", "-f", "raw",
                "-c", "write -P 0xab 0 64k",
                "-c", "read -P 0xab 0 64k",
                "-c", "aio_write -P 0xcd 1M 128k",
                "-c", "aio_flush",
                "-c", "read -P 0xcd 1M 128k",
                "-c", "write -z 6M 512k",
                "-c", "read -P 0 6M 512k",
                "-c", "discard 2M 1M",
                "-c", "write -f -P 0xef 3M 4k",
                "-c", "read -P 0x12 5M 1M",
                "-c", "flush",
                server.Uri("top.vhdx"));
            Assert.DoesNotContain("fail", io.Stdout + io.Stderr, StringComparison.OrdinalIgnoreCase);
            await server.StopAsync();
        }

        byte[] content = await ReadOfflineAsync("top.vhdx");
        AssertFilled(content, 0, 64 * 1024, 0xab);
        AssertFilled(content, 64 * 1024, MiB - (64 * 1024), 0x11);
        AssertFilled(content, MiB, 128 * 1024, 0xcd);
        AssertFilled(content, 3 * MiB, 4096, 0xef);
        AssertFilled(content, 5 * MiB, MiB, 0x12);
        AssertFilled(content, 6 * MiB, 512 * 1024, 0);
        AssertFilled(content, (6 * MiB) + (512 * 1024), 512 * 1024, 0x12);
        AssertFilled(content, 7 * MiB, 57 * MiB, 0);

        // The parent (an image layer) is never written through its child.
        Assert.Equal(baseHash, Sha256(PathOf("base.vhdx")));
    }

    [Fact]
    public async Task Qemu_img_convert_over_nbd_equals_blockdriver_img_convert_and_qemu_img_map_matches_our_allocation()
    {
        await CreateChainAsync();
        await using (ServeProcess writer = await ServeAsync("top.vhdx"))
        {
            await Tool.RunOkAsync(Output, "qemu-io", "-f", "raw", "-c", "write -P 0x33 20M 3M", writer.Uri("top.vhdx"));
            await writer.StopAsync();
        }

        string qemuMap;
        await using (ServeProcess server = await ServeAsync("--read-only", "top.vhdx"))
        {
            await Tool.RunOkAsync(Output, "qemu-img", "convert", "-f", "raw", "-O", "raw", server.Uri("top.vhdx"), PathOf("qemu.raw"));
            qemuMap = (await Tool.RunOkAsync(Output, "qemu-img", "map", "-f", "raw", "--output=json", server.Uri("top.vhdx"))).Stdout;
            await server.StopAsync();
        }

        await BlockDriverCli.RunOkAsync(Output, Dir, "img", "convert", "top.vhdx", "ours.raw");
        Assert.Equal(Sha256(PathOf("ours.raw")), Sha256(PathOf("qemu.raw")));

        string ourMap = (await BlockDriverCli.RunOkAsync(Output, Dir, "img", "map", "--json", "top.vhdx")).Stdout;
        List<(long Start, long End, bool Data)> ours = Merge(JsonDocument.Parse(ourMap).RootElement.EnumerateArray()
            .Select(e => (e.GetProperty("start").GetInt64(), e.GetProperty("length").GetInt64(), e.GetProperty("state").GetString() == "data")));
        List<(long Start, long End, bool Data)> theirs = Merge(JsonDocument.Parse(qemuMap).RootElement.EnumerateArray()
            .Select(e => (e.GetProperty("start").GetInt64(), e.GetProperty("length").GetInt64(), e.GetProperty("data").GetBoolean())));
        Assert.Equal(ours, theirs);
        Assert.Contains(theirs, e => !e.Data);
        Assert.Contains(theirs, e => e.Data);
    }

    private static List<(long Start, long End, bool Data)> Merge(IEnumerable<(long Start, long Length, bool Data)> extents)
    {
        var merged = new List<(long Start, long End, bool Data)>();
        foreach ((long start, long length, bool data) in extents)
        {
            if (merged.Count > 0 && merged[^1].Data == data && merged[^1].End == start)
            {
                merged[^1] = (merged[^1].Start, start + length, data);
            }
            else
            {
                merged.Add((start, start + length, data));
            }
        }

        return merged;
    }
}
