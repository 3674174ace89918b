using System.Diagnostics;

namespace BlockDriver.NbdBench;

/// <summary>Runs the external tools (qemu-img, qemu-io, qemu-nbd, nbdfuse, losetup, fio) with a timeout.</summary>
internal static class Shell
{
    public static async Task<string> RunAsync(string program, params string[] args)
    {
        (int exitCode, string stdout, string stderr) = await RunToEndAsync(program, args, TimeSpan.FromMinutes(10)).ConfigureAwait(false);
        return exitCode == 0
            ? stdout
            : throw new InvalidOperationException($"{program} {string.Join(' ', args)} exited {exitCode}: {stderr}");
    }

    /// <summary>Runs a program that answers with its exit code (nbdinfo --can); returns the code.</summary>
    public static async Task<int> ExitCodeAsync(string program, params string[] args) =>
        (await RunToEndAsync(program, args, TimeSpan.FromMinutes(1)).ConfigureAwait(false)).ExitCode;

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunToEndAsync(string program, string[] args, TimeSpan timeout)
    {
        using var process = Process.Start(StartInfo(program, args)) ?? throw new InvalidOperationException($"Cannot start {program}.");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    /// <summary>Starts a long-running program (nbdfuse, qemu-nbd); the caller stops it.</summary>
    public static Process Start(string program, params string[] args)
    {
        Process process = Process.Start(StartInfo(program, args)) ?? throw new InvalidOperationException($"Cannot start {program}.");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static ProcessStartInfo StartInfo(string program, string[] args)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return start;
    }

    public static async Task WaitForAsync(Func<bool> condition, string what)
    {
        DateTime deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting for {what}.");
            }

            await Task.Delay(50).ConfigureAwait(false);
        }
    }
}
