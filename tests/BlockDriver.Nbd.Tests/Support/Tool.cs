using System.Diagnostics;
using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests.Support;

/// <summary>Runs the real NBD clients and system tools. They are installed in CI (.ci/run), so a missing one fails
/// the test. Every run has a timeout (a client waiting for a server slot would otherwise hang the suite) and is
/// logged with its output.</summary>
public static class Tool
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(120);

    public static string Require(string tool) =>
        ChildProcess.Locate(tool) ?? (File.Exists("/usr/sbin/" + tool) ? "/usr/sbin/" + tool : null)
        ?? throw new InvalidOperationException($"{tool} is not installed (CI installs it; see .ci/run).");

    public static async Task<ProcessResult> RunAsync(ITestOutputHelper output, string tool, IEnumerable<string> args,
        string? workingDirectory = null, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(Require(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout ?? DefaultTimeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish within {timeout ?? DefaultTimeout}.");
        }

        var result = new ProcessResult(process.ExitCode, await stdout, await stderr);
        string shown = result.Stdout.Length > 4000 ? result.Stdout[..4000] + "..." : result.Stdout;
        output.WriteLine($"$ {tool} {string.Join(' ', args)}\nexit {result.ExitCode}\n{shown}{result.Stderr}");
        return result;
    }

    public static async Task<ProcessResult> RunOkAsync(ITestOutputHelper output, string tool, params string[] args)
    {
        ProcessResult result = await RunAsync(output, tool, args);
        Assert.True(result.ExitCode == 0, $"{tool} {string.Join(' ', args)} failed: {result}");
        return result;
    }
}
