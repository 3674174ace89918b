using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests.Support;

/// <summary>The real <c>blockdriver</c> (the blockdriver.dll the project reference copies beside the tests).</summary>
public static class BlockDriverCli
{
    public static readonly string Path = System.IO.Path.Combine(AppContext.BaseDirectory, "blockdriver.dll");

    public static async Task<ProcessResult> RunAsync(ITestOutputHelper output, string workingDirectory, params string[] args)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? ChildProcess.Locate("dotnet") ?? "dotnet";
        ProcessResult result = await ChildProcess.RunAsync(dotnet, [Path, .. args], workingDirectory);
        output.WriteLine($"$ blockdriver {string.Join(' ', args)}\n{result}");
        return result;
    }

    public static async Task<ProcessResult> RunOkAsync(ITestOutputHelper output, string workingDirectory, params string[] args)
    {
        ProcessResult result = await RunAsync(output, workingDirectory, args);
        Assert.True(result.ExitCode == 0, $"blockdriver {string.Join(' ', args)} failed: {result}");
        return result;
    }
}
