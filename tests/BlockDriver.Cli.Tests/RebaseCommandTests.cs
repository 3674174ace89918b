using BlockDriver.Cli.Tests.Support;
using BlockDriver.Vhdx;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class RebaseCommandTests(ITestOutputHelper output) : CliTestBase(output)
{
    private const long MiB = TestImages.MiB;

    [Fact]
    public async Task Rebasing_onto_a_different_base_keeps_the_content()
    {
        TestImages.WriteRaw(PathOf("one.raw"), 32 * MiB, (0, 12 << 20, 1));
        TestImages.WriteRaw(PathOf("two.raw"), 32 * MiB, (4 * MiB, 12 << 20, 2), (30 * MiB, 4096, 3));
        await RunOkAsync("img", "convert", "-O", "vhdx", "one.raw", "one.vhdx");
        await RunOkAsync("img", "convert", "-O", "vhdx", "two.raw", "two.vhdx");
        await RunOkAsync("img", "create", "-b", "one.vhdx", "child.vhdx");
        await TestImages.WriteVhdxAsync(PathOf("child.vhdx"), (MiB, 64 * 1024, 4), (20 * MiB, 8192, 5));
        await TestImages.ZeroVhdxAsync(PathOf("child.vhdx"), 6 * MiB, 4096);
        await RunOkAsync("img", "convert", "child.vhdx", "before.raw");

        ProcessResult result = await RunOkAsync("img", "rebase", "-b", "two.vhdx", "child.vhdx");

        Assert.Contains("Rebased 'child.vhdx' onto 'two.vhdx'", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("Images are identical.", (await RunOkAsync("img", "compare", "before.raw", "child.vhdx")).Stdout, StringComparison.Ordinal);
        await RunOkAsync("img", "check", "child.vhdx");
        await using VhdxDisk disk = VhdxDisk.Open(PathOf("child.vhdx"), new VhdxOpenOptions { ReadOnly = true });
        Assert.Equal(PathOf("two.vhdx"), disk.Files[1].Path);
    }

    [Fact]
    public async Task Rebasing_onto_the_grandparent_folds_the_parent_in()
    {
        TestImages.WriteRaw(PathOf("base.raw"), 16 * MiB, (0, 8 << 20, 1));
        await RunOkAsync("img", "convert", "-O", "vhdx", "base.raw", "base.vhdx");
        await RunOkAsync("img", "create", "-b", "base.vhdx", "mid.vhdx");
        await TestImages.WriteVhdxAsync(PathOf("mid.vhdx"), (MiB, 4096, 2));
        await RunOkAsync("img", "create", "-b", "mid.vhdx", "top.vhdx");
        await TestImages.WriteVhdxAsync(PathOf("top.vhdx"), (3 * MiB, 4096, 3));
        await RunOkAsync("img", "convert", "top.vhdx", "before.raw");

        await RunOkAsync("img", "rebase", "-b", "base.vhdx", "top.vhdx");

        await RunOkAsync("img", "compare", "before.raw", "top.vhdx");
        await using VhdxDisk disk = VhdxDisk.Open(PathOf("top.vhdx"), new VhdxOpenOptions { ReadOnly = true });
        Assert.Equal(2, disk.Files.Count);
        Assert.True(TestImages.Allocated(PathOf("top.vhdx")) < 4 * MiB, "only the parent's and the child's own sectors are copied");
    }

    [Fact]
    public async Task Rebasing_onto_a_descendant_is_refused_and_changes_nothing()
    {
        await RunOkAsync("img", "create", "base.vhdx", "8M");
        await RunOkAsync("img", "create", "-b", "base.vhdx", "child.vhdx");
        await RunOkAsync("img", "create", "-b", "child.vhdx", "grandchild.vhdx");
        byte[] before = await File.ReadAllBytesAsync(PathOf("child.vhdx"));

        ProcessResult itself = await RunAsync("img", "rebase", "-b", "child.vhdx", "child.vhdx");
        ProcessResult descendant = await RunAsync("img", "rebase", "-b", "grandchild.vhdx", "child.vhdx");

        AssertError(itself, 1, "loop");
        AssertError(descendant, 1, "loop");
        Assert.Equal(before, await File.ReadAllBytesAsync(PathOf("child.vhdx")));
        Assert.Equal(["base.vhdx", "child.vhdx", "grandchild.vhdx"], Directory.GetFiles(Temp.FullName).Select(Path.GetFileName).Order());
    }
}
