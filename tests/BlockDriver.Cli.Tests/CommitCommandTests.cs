using BlockDriver.Cli.Tests.Support;
using BlockDriver.Vhdx;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class CommitCommandTests(ITestOutputHelper output) : CliTestBase(output)
{
    private const long MiB = TestImages.MiB;

    [Fact]
    public async Task Parent_receives_the_childs_data_and_the_child_still_reads_the_same()
    {
        TestImages.WriteRaw(PathOf("base.raw"), 32 * MiB, (0, 16 << 20, 1));
        await RunOkAsync("img", "convert", "-O", "vhdx", "base.raw", "base.vhdx");
        TestImages.CopyAndModify(PathOf("base.raw"), PathOf("expected.raw"), (3 * MiB, 64 * 1024, 2), (20 * MiB, 4096, 3));
        using (var handle = File.OpenHandle(PathOf("expected.raw"), FileMode.Open, FileAccess.Write))
        {
            RandomAccess.Write(handle, new byte[2 << 20], 8 * MiB);
        }

        await RunOkAsync("img", "convert", "-B", "base.vhdx", "expected.raw", "child.vhdx");
        await RunOkAsync("img", "create", "-b", "base.vhdx", "sibling.vhdx");

        ProcessResult result = await RunOkAsync("img", "commit", "child.vhdx");

        Assert.Contains("Image committed.", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("no longer matches", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("Images are identical.", (await RunOkAsync("img", "compare", "expected.raw", "base.vhdx")).Stdout, StringComparison.Ordinal);
        Assert.Contains("Images are identical.", (await RunOkAsync("img", "compare", "expected.raw", "child.vhdx")).Stdout, StringComparison.Ordinal);
        await RunOkAsync("img", "check", "child.vhdx");
        await using (VhdxDisk child = VhdxDisk.Open(PathOf("child.vhdx"), new VhdxOpenOptions { ReadOnly = true }))
        {
            Assert.Equal(PathOf("base.vhdx"), child.Files[1].Path);
            Assert.Empty(child.Top.AllocatedBlocks());
        }

        // The sibling recorded the parent's old content, which is gone: its link is broken, as VHDX intends.
        Assert.Equal(2, (await RunAsync("img", "check", "sibling.vhdx")).ExitCode);
    }

    [Fact]
    public async Task Commit_into_a_differencing_parent_keeps_the_grandparent_unchanged()
    {
        TestImages.WriteRaw(PathOf("base.raw"), 16 * MiB, (0, 8 << 20, 1));
        await RunOkAsync("img", "convert", "-O", "vhdx", "base.raw", "base.vhdx");
        await RunOkAsync("img", "create", "-b", "base.vhdx", "mid.vhdx");
        await TestImages.WriteVhdxAsync(PathOf("mid.vhdx"), (MiB, 4096, 2));
        await RunOkAsync("img", "create", "-b", "mid.vhdx", "top.vhdx");
        await TestImages.WriteVhdxAsync(PathOf("top.vhdx"), (2 * MiB, 8192, 3));
        await RunOkAsync("img", "convert", "top.vhdx", "expected.raw");
        Guid baseGuid = await TestImages.DataWriteGuidAsync(PathOf("base.vhdx"));

        await RunOkAsync("img", "commit", "top.vhdx");

        Assert.Equal(baseGuid, await TestImages.DataWriteGuidAsync(PathOf("base.vhdx")));
        await RunOkAsync("img", "compare", "expected.raw", "mid.vhdx");
        await RunOkAsync("img", "compare", "expected.raw", "top.vhdx");
        await RunOkAsync("img", "compare", "base.raw", "base.vhdx");
    }

    [Fact]
    public async Task Empty_child_commits_nothing_and_changes_nothing()
    {
        await RunOkAsync("img", "create", "base.vhdx", "8M");
        await RunOkAsync("img", "create", "-b", "base.vhdx", "child.vhdx");
        Guid before = await TestImages.DataWriteGuidAsync(PathOf("base.vhdx"));

        ProcessResult result = await RunOkAsync("img", "commit", "child.vhdx");

        Assert.Contains("nothing to commit", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(before, await TestImages.DataWriteGuidAsync(PathOf("base.vhdx")));
    }

    [Fact]
    public async Task Dynamic_image_has_nothing_to_commit_into()
    {
        await RunOkAsync("img", "create", "disk.vhdx", "8M");

        ProcessResult result = await RunAsync("img", "commit", "disk.vhdx");

        AssertError(result, 1, "not a differencing image");
    }
}
