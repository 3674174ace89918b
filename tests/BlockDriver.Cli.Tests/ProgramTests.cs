using BlockDriver.Cli.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

public class ProgramTests(ITestOutputHelper output) : CliTestBase(output)
{
    [Fact]
    public async Task Root_help_lists_the_img_group()
    {
        ProcessResult result = await RunOkAsync("--help");

        Assert.Contains("img", result.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Img_help_lists_every_command()
    {
        ProcessResult result = await RunOkAsync("img", "--help");

        foreach (string command in new[] { "create", "info", "check", "convert", "compare", "map", "commit", "rebase" })
        {
            Assert.Contains($"  {command} ", result.Stdout, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Usage_errors_are_short_and_point_to_help()
    {
        ProcessResult result = await RunAsync("img", "frobnicate");

        string[] lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(1, result.ExitCode);
        Assert.Empty(result.Stdout);
        Assert.Contains("blockdriver: error: Unrecognized command or argument 'frobnicate'.", lines);
        Assert.All(lines[..^1], line => Assert.StartsWith("blockdriver: error: ", line, StringComparison.Ordinal));
        Assert.Equal("Try 'blockdriver img --help' for more information.", lines[^1]);
    }

    [Fact]
    public async Task Malformed_vhdx_is_a_one_line_error_without_a_stack_trace()
    {
        byte[] garbage = new byte[2 << 20];
        new Random(1).NextBytes(garbage);
        "vhdxfile"u8.CopyTo(garbage);
        await File.WriteAllBytesAsync(PathOf("bad.vhdx"), garbage);

        foreach (string command in new[] { "info", "map" })
        {
            AssertError(await RunAsync("img", command, "bad.vhdx"), 1, "corrupt VHDX");
        }

        AssertError(await RunAsync("img", "convert", "bad.vhdx", "out.raw"), 1, "corrupt VHDX");
        AssertError(await RunAsync("img", "compare", "bad.vhdx", "bad.vhdx"), 2, "corrupt VHDX");
        Assert.False(File.Exists(PathOf("out.raw")));
    }
}
