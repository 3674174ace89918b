using System.Text.Json;
using BlockDriver.Nbd.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests;

/// <summary>nbdinfo and nbdcopy (libnbd) against <c>blockdriver serve nbd</c>.</summary>
public sealed class LibnbdClientTests : RealClientFixture
{
    public LibnbdClientTests(ITestOutputHelper output)
        : base(output)
    {
    }

    [Fact]
    public async Task Nbdinfo_shows_size_block_sizes_contexts_and_capabilities()
    {
        await CreateChainAsync();
        await using ServeProcess server = await ServeAsync("top.vhdx", "base.vhdx");
        JsonElement info = JsonDocument.Parse((await Tool.RunOkAsync(Output, "nbdinfo", "--json", server.Uri("top.vhdx"))).Stdout).RootElement;
        JsonElement export = info.GetProperty("exports")[0];
        Assert.Equal("top.vhdx", export.GetProperty("export-name").GetString());
        Assert.Equal(64L * MiB, export.GetProperty("export-size").GetInt64());
        Assert.Equal(512, export.GetProperty("block_size_minimum").GetInt32());
        Assert.Equal(4096, export.GetProperty("block_size_preferred").GetInt32());
        Assert.Equal(32 * MiB, export.GetProperty("block_size_maximum").GetInt32());
        Assert.Contains("base:allocation", export.GetProperty("contexts").EnumerateArray().Select(c => c.GetString()));
        Assert.True(export.GetProperty("can_multi_conn").GetBoolean());
        Assert.True(export.GetProperty("can_trim").GetBoolean());
        Assert.False(export.GetProperty("is_read_only").GetBoolean());

        // The default export is the first one given.
        Assert.Equal("67108864", (await Tool.RunOkAsync(Output, "nbdinfo", "--size", server.Uri())).Stdout.Trim());
        ProcessResult list = await Tool.RunOkAsync(Output, "nbdinfo", "--list", server.Uri());
        Assert.Contains("export=\"top.vhdx\"", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("export=\"base.vhdx\"", list.Stdout, StringComparison.Ordinal);

        // base:allocation from the VHDX: data where base.vhdx has blocks, hole,zero elsewhere.
        string map = (await Tool.RunOkAsync(Output, "nbdinfo", "--map", server.Uri("top.vhdx"))).Stdout;
        Assert.Contains("hole,zero", map, StringComparison.Ordinal);
        Assert.Contains("data", map, StringComparison.Ordinal);
        await server.StopAsync();
    }

    [Fact]
    public async Task Nbdinfo_sees_a_read_only_export()
    {
        await CreateChainAsync();
        await using ServeProcess server = await ServeAsync("--read-only", "top.vhdx");
        Assert.Equal(0, (await Tool.RunAsync(Output, "nbdinfo", ["--is", "read-only", server.Uri()])).ExitCode);
        Assert.Equal(2, (await Tool.RunAsync(Output, "nbdinfo", ["--can", "trim", server.Uri()])).ExitCode);
        await server.StopAsync();
    }

    [Fact]
    public async Task Nbdcopy_with_four_connections_copies_both_ways()
    {
        // A 48 MiB source with data, a zero run and holes.
        string source = PathOf("source.raw");
        await using (FileStream file = File.Create(source))
        {
            file.SetLength(48L * MiB);
            file.Position = 3 * MiB;
            await file.WriteAsync(TestPatterns.Bytes(1, 5 * MiB));
            file.Position = 20 * MiB;
            await file.WriteAsync(new byte[MiB]);
            file.Position = 40 * MiB;
            await file.WriteAsync(TestPatterns.Bytes(2, 7 * MiB));
        }

        await BlockDriverCli.RunOkAsync(Output, Dir, "img", "create", "disk.vhdx", "48M");
        await using (ServeProcess server = await ServeAsync("disk.vhdx"))
        {
            await Tool.RunOkAsync(Output, "nbdcopy", "--connections=4", "--flush", source, server.Uri());
            await Tool.RunOkAsync(Output, "nbdcopy", "--connections=4", server.Uri(), PathOf("back.raw"));
            await server.StopAsync();
        }

        Assert.Equal(Sha256(source), Sha256(PathOf("back.raw")));
        Assert.Equal(await File.ReadAllBytesAsync(source), await ReadOfflineAsync("disk.vhdx"));
    }
}
