using System.Text.Json;
using BlockDriver.Cli.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class InfoCommandTests(ITestOutputHelper output) : CliTestBase(output)
{
    [Fact]
    public async Task Text_output_shows_sizes_and_every_file_of_the_chain()
    {
        await CreateChainAsync();

        ProcessResult result = await RunOkAsync("img", "info", "top.vhdx");

        string text = result.Stdout;
        Assert.Contains("image: top.vhdx", text, StringComparison.Ordinal);
        Assert.Contains($"image: {PathOf("mid.vhdx")}", text, StringComparison.Ordinal);
        Assert.Contains($"image: {PathOf("base.vhdx")}", text, StringComparison.Ordinal);
        Assert.Contains("virtual size: 48 MiB (50331648 bytes)", text, StringComparison.Ordinal);
        Assert.Contains("block size: 2 MiB (2097152 bytes)", text, StringComparison.Ordinal);
        Assert.Contains("logical sector size: 512", text, StringComparison.Ordinal);
        Assert.Contains("type: differencing", text, StringComparison.Ordinal);
        Assert.Contains("type: dynamic", text, StringComparison.Ordinal);
        Assert.Contains($"backing file: .\\mid.vhdx (actual path: {PathOf("mid.vhdx")})", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Json_output_describes_each_file_and_its_link()
    {
        await CreateChainAsync(baseData: true);

        ProcessResult result = await RunOkAsync("img", "info", "--json", "top.vhdx");

        using var document = JsonDocument.Parse(result.Stdout);
        JsonElement root = document.RootElement;
        Assert.Equal("top.vhdx", root.GetProperty("filename").GetString());
        Assert.Equal("vhdx", root.GetProperty("format").GetString());
        Assert.Equal(48 * TestImages.MiB, root.GetProperty("virtualSize").GetInt64());
        JsonElement[] chain = [.. root.GetProperty("chain").EnumerateArray()];
        Assert.Equal(3, chain.Length);
        Assert.Equal(["differencing", "differencing", "dynamic"], chain.Select(f => f.GetProperty("type").GetString()));
        Assert.Equal(PathOf("base.vhdx"), chain[2].GetProperty("filename").GetString());
        Assert.Equal(JsonValueKind.Null, chain[2].GetProperty("parent").ValueKind);
        for (int i = 0; i < 2; i++)
        {
            JsonElement parent = chain[i].GetProperty("parent");
            Assert.Equal(chain[i + 1].GetProperty("filename").GetString(), parent.GetProperty("filename").GetString());
            Assert.Equal(chain[i + 1].GetProperty("dataWriteGuid").GetGuid(), parent.GetProperty("linkage").GetGuid());
        }

        foreach (JsonElement file in chain)
        {
            Assert.Equal(2 * TestImages.MiB, file.GetProperty("blockSize").GetInt64());
            Assert.Equal(512, file.GetProperty("logicalSectorSize").GetInt32());
            Assert.Equal(4096, file.GetProperty("physicalSectorSize").GetInt32());
            Assert.False(file.GetProperty("logReplayed").GetBoolean());
            Assert.Equal(TestImages.Allocated(PathOf(Path.GetFileName(file.GetProperty("filename").GetString()!))), file.GetProperty("diskSize").GetInt64());
        }

        Assert.True(chain[2].GetProperty("diskSize").GetInt64() >= TestImages.MiB, "the base holds 1 MiB of data");
    }

    [Fact]
    public async Task Raw_file_is_shown_as_format_raw()
    {
        TestImages.WriteRaw(PathOf("disk.raw"), 8 * TestImages.MiB, (TestImages.MiB, 4096, 7));

        ProcessResult result = await RunOkAsync("img", "info", "--json", "disk.raw");

        using var document = JsonDocument.Parse(result.Stdout);
        JsonElement file = document.RootElement.GetProperty("chain")[0];
        Assert.Equal("raw", document.RootElement.GetProperty("format").GetString());
        Assert.Equal(8 * TestImages.MiB, file.GetProperty("virtualSize").GetInt64());
        Assert.Equal(JsonValueKind.Null, file.GetProperty("type").ValueKind);
        Assert.True(file.GetProperty("diskSize").GetInt64() < TestImages.MiB, "the raw file is sparse");
    }

    [Fact]
    public async Task Missing_file_is_a_one_line_error()
    {
        ProcessResult result = await RunAsync("img", "info", "nothing.vhdx");

        AssertError(result, 1, "nothing.vhdx: no such file");
    }

    private async Task CreateChainAsync(bool baseData = false)
    {
        await RunOkAsync("img", "create", "base.vhdx", "48M");
        if (baseData)
        {
            await TestImages.WriteVhdxAsync(PathOf("base.vhdx"), (0, 1 << 20, 1));
        }

        await RunOkAsync("img", "create", "-b", "base.vhdx", "mid.vhdx");
        await RunOkAsync("img", "create", "-b", "mid.vhdx", "top.vhdx");
    }
}
