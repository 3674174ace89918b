using BlockDriver.Cli.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class CheckCommandTests(ITestOutputHelper output) : CliTestBase(output)
{
    // MS-VHDX 2.2: the two headers sit at 64 KiB and 128 KiB and start with the signature "head".
    private const long Header1Offset = 64 * 1024;
    private const long Header2Offset = 128 * 1024;

    [Fact]
    public async Task Clean_chain_has_no_errors()
    {
        await RunOkAsync("img", "create", "base.vhdx", "16M");
        await TestImages.WriteVhdxAsync(PathOf("base.vhdx"), (0, 1 << 20, 1));
        await RunOkAsync("img", "create", "-b", "base.vhdx", "child.vhdx");
        await TestImages.WriteVhdxAsync(PathOf("child.vhdx"), (4096, 8192, 2));

        ProcessResult result = await RunAsync("img", "check", "child.vhdx");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("No errors were found on the image.", result.Stdout, StringComparison.Ordinal);
        Assert.Contains(PathOf("base.vhdx"), result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Corrupt_header_signatures_are_reported_with_exit_2()
    {
        await RunOkAsync("img", "create", "disk.vhdx", "16M");
        using (var handle = File.OpenHandle(PathOf("disk.vhdx"), FileMode.Open, FileAccess.Write))
        {
            RandomAccess.Write(handle, "XXXX"u8, Header1Offset);
            RandomAccess.Write(handle, "XXXX"u8, Header2Offset);
        }

        ProcessResult result = await RunAsync("img", "check", "disk.vhdx");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("ERROR: ", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("header", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("1 error was found on the image.", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parent_replaced_by_another_file_is_reported_as_a_broken_link()
    {
        await RunOkAsync("img", "create", "base.vhdx", "16M");
        await RunOkAsync("img", "create", "-b", "base.vhdx", "child.vhdx");
        File.Delete(PathOf("base.vhdx"));
        await RunOkAsync("img", "create", "base.vhdx", "16M");

        ProcessResult result = await RunAsync("img", "check", "child.vhdx");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("has changed since the child was made", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_parent_is_reported_as_a_broken_chain()
    {
        await RunOkAsync("img", "create", "base.vhdx", "16M");
        await RunOkAsync("img", "create", "-b", "base.vhdx", "child.vhdx");
        File.Delete(PathOf("base.vhdx"));

        ProcessResult result = await RunAsync("img", "check", "child.vhdx");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("parent not found", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Block_past_the_end_of_a_truncated_file_is_reported()
    {
        await RunOkAsync("img", "create", "disk.vhdx", "16M");
        await TestImages.WriteVhdxAsync(PathOf("disk.vhdx"), (0, 1 << 20, 3));
        long length = new FileInfo(PathOf("disk.vhdx")).Length;
        using (var handle = File.OpenHandle(PathOf("disk.vhdx"), FileMode.Open, FileAccess.Write))
        {
            // The one payload block is the last 2 MiB of the file; cut half of it off.
            RandomAccess.SetLength(handle, length - TestImages.MiB);
        }

        ProcessResult result = await RunAsync("img", "check", "disk.vhdx");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("truncated", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_file_is_an_error_not_corruption()
    {
        ProcessResult result = await RunAsync("img", "check", "nothing.vhdx");

        AssertError(result, 1, "no such file");
    }
}
