namespace BlockDriver.Core.Tests;

/// <summary>Runs the real <c>blockdriver</c> (the blockdriver.dll the project reference copies beside the tests) with
/// extra environment variables, e.g. BLOCKDRIVER_CRASH_AT to make it SIGKILL itself mid-operation.</summary>
internal static class CliProcess
{
    private static readonly string CliPath = Path.Combine(AppContext.BaseDirectory, "blockdriver.dll");

    public static Task<ProcessResult> RunAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? ChildProcess.Locate("dotnet") ?? "dotnet";
        return ChildProcess.RunAsync(dotnet, [CliPath, .. args], AppContext.BaseDirectory,
            environment.ToDictionary(e => e.Key, e => (string?)e.Value));
    }
}
