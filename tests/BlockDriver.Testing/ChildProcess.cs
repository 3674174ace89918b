using System.Diagnostics;

namespace BlockDriver.Testing;

/// <summary>Runs a program to completion with stdout and stderr captured (so both are redirected, as in a script:
/// the CLI shows no progress bars).</summary>
public static class ChildProcess
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(3);

    public static Task<ProcessResult> RunAsync(string program, IEnumerable<string> args, string workingDirectory) =>
        RunAsync(program, args, workingDirectory, environment: null);

    /// <summary>Runs a program with this process's environment changed by <paramref name="environment"/>: a value
    /// sets the variable, null removes it. Past <paramref name="timeout"/> (default 3 minutes) the program and its
    /// children are killed and <see cref="TimeoutException"/> is thrown.</summary>
    public static async Task<ProcessResult> RunAsync(
        string program, IEnumerable<string> args, string workingDirectory, IReadOnlyDictionary<string, string?>? environment, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach ((string name, string? value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
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
            throw;
        }

        return new ProcessResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>The full path of <paramref name="tool"/> on PATH or in /usr/bin, or null.</summary>
    public static string? Locate(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin")
            .Select(directory => Path.Combine(directory, tool))
            .FirstOrDefault(File.Exists);
}
