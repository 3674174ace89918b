using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests.Support;

/// <summary>Base of the end-to-end tests: a temporary directory per test (deleted in <see cref="Dispose"/>, which
/// xunit calls whether or not the test passed) and the real <c>blockdriver</c> run as a child process, the
/// <c>blockdriver.dll</c> the project reference copies next to the test assembly, with that directory as its
/// working directory. Every command line and its result go to the test output.</summary>
public abstract class CliTestBase : IDisposable
{
    private static readonly string CliPath = Path.Combine(AppContext.BaseDirectory, "blockdriver.dll");

    protected CliTestBase(ITestOutputHelper output)
    {
        Output = output;
        Temp = new TempDirectory("cli");
    }

    protected ITestOutputHelper Output { get; }

    protected TempDirectory Temp { get; }

    /// <summary>The absolute path of <paramref name="name"/> in the test's directory.</summary>
    protected string PathOf(string name) => Temp.GetFilePath(name);

    /// <summary>Runs <c>blockdriver</c> with the arguments.</summary>
    protected async Task<ProcessResult> RunAsync(params string[] args)
    {
        // dotnet test sets DOTNET_HOST_PATH to the dotnet that runs it; the same host runs the CLI.
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? ChildProcess.Locate("dotnet") ?? "dotnet";
        ProcessResult result = await ChildProcess.RunAsync(dotnet, [CliPath, .. args], Temp.FullName);
        Output.WriteLine($"$ blockdriver {string.Join(' ', args)}\n{result}");
        Assert.DoesNotContain("   at ", result.Stderr, StringComparison.Ordinal);
        return result;
    }

    /// <summary>Runs <c>blockdriver</c> and fails the test unless it exits 0.</summary>
    protected async Task<ProcessResult> RunOkAsync(params string[] args)
    {
        ProcessResult result = await RunAsync(args);
        Assert.True(result.ExitCode == 0, $"blockdriver {string.Join(' ', args)} failed: {result}");
        return result;
    }

    /// <summary>Asserts a failed run: the expected exit code and one "blockdriver: error:" line on stderr.</summary>
    protected static void AssertError(ProcessResult result, int exitCode, string messagePart)
    {
        Assert.True(result.ExitCode == exitCode, $"expected exit {exitCode}: {result}");
        string[] lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("blockdriver: error: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(messagePart, lines[0], StringComparison.Ordinal);
    }

    public void Dispose()
    {
        Temp.Dispose();
        GC.SuppressFinalize(this);
    }
}
