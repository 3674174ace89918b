using System.Diagnostics;

namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>How a short-lived command ended and what it printed.</summary>
internal sealed record CommandResult(string CommandLine, int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"$ {CommandLine}\nexit {ExitCode}\nstdout: {Stdout.TrimEnd()}\nstderr: {Stderr.TrimEnd()}";
}

/// <summary>Runs short-lived programs (the docker client, the blockdriver CLI) to completion with a time limit.</summary>
internal static class Command
{
    /// <summary>Runs <paramref name="program"/> with stdout and stderr captured; a run longer than
    /// <paramref name="timeout"/> is killed and throws <see cref="TimeoutException"/>. <paramref name="environment"/>
    /// sets variables over this process's own.</summary>
    public static async Task<CommandResult> RunAsync(string program, IEnumerable<string> args, TimeSpan timeout,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        string commandLine = $"{program} {string.Join(' ', start.ArgumentList)}";
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {program}");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException ex)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{commandLine} took longer than {timeout}", ex);
        }

        return new CommandResult(commandLine, process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    /// <summary>The first of <paramref name="candidates"/> that exists, or null.</summary>
    public static string? Find(params string[] candidates) => candidates.FirstOrDefault(File.Exists);
}
