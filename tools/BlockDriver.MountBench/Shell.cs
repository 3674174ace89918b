using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace BlockDriver.MountBench;

/// <summary>Runs the external tools (fio, losetup, mkfs.ext4, mount, qemu-img, qemu-nbd, nbdfuse, the blockdriver
/// CLI) with a timeout; a cancelled run kills its program.</summary>
internal static class Shell
{
    /// <summary>Runs a program to completion; throws with its standard error when it exits non-zero.</summary>
    public static async Task<string> RunAsync(string program, IEnumerable<string> args, CancellationToken ct = default)
    {
        string[] list = [.. args];
        (int exitCode, string stdout, string stderr) = await RunToEndAsync(program, list, TimeSpan.FromMinutes(15), ct).ConfigureAwait(false);
        return exitCode == 0
            ? stdout
            : throw new InvalidOperationException($"{program} {string.Join(' ', list)} exited {exitCode}: {stderr.Trim()}");
    }

    public static Task<string> RunAsync(string program, params string[] args) => RunAsync(program, args, CancellationToken.None);

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunToEndAsync(string program, string[] args, TimeSpan timeout, CancellationToken ct)
    {
        using var process = Process.Start(StartInfo(program, args)) ?? throw new InvalidOperationException($"Cannot start {program}.");
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        Task<string> stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            await process.WaitForExitAsync(ct).WaitAsync(timeout, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw;
        }

        return (process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    /// <summary>Starts a long-running program (blockdriver daemon, qemu-nbd, nbdfuse) in a session of its own
    /// (<c>setsid</c>, which execs it under the same pid), so that a Ctrl-C in the terminal reaches only the bench,
    /// which then stops its children in order. Output lines are kept in <see cref="Server.Output"/>.</summary>
    public static Server Start(string program, params string[] args)
    {
        Process process = Process.Start(StartInfo("setsid", [program, .. args])) ?? throw new InvalidOperationException($"Cannot start {program}.");
        var server = new Server(program, process);
        process.OutputDataReceived += (_, e) => server.Add(e.Data);
        process.ErrorDataReceived += (_, e) => server.Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    /// <summary>Sends a signal (TERM, KILL, ...) to a process.</summary>
    public static Task SignalAsync(int pid, string signal) =>
        RunAsync("kill", "-" + signal, pid.ToString(CultureInfo.InvariantCulture));

    public static async Task WaitForAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        DateTime deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting for {what}.");
            }

            await Task.Delay(50).ConfigureAwait(false);
        }
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

    /// <summary>A long-running child: its process and every output line so far.</summary>
    internal sealed class Server(string name, Process process)
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public string Name { get; } = name;

        public Process Process { get; } = process;

        public int Pid => Process.Id;

        public string Output => string.Join('\n', _lines);

        public bool HasLine(string text) => _lines.Any(l => l.Contains(text, StringComparison.Ordinal));

        public void Add(string? line)
        {
            if (line is not null)
            {
                _lines.Enqueue(line);
            }
        }

        /// <summary>SIGTERM, then SIGKILL after <paramref name="grace"/>; waits for the exit.</summary>
        public async Task StopAsync(TimeSpan grace)
        {
            if (!Process.HasExited)
            {
                await SignalAsync(Pid, "TERM").ConfigureAwait(false);
                try
                {
                    await Process.WaitForExitAsync().WaitAsync(grace).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    Process.Kill();
                    await Process.WaitForExitAsync().ConfigureAwait(false);
                    throw new InvalidOperationException($"{Name} (pid {Pid}) did not stop within {grace} of SIGTERM; killed it.\n{Output}");
                }
            }

            Process.WaitForExit();
        }
    }
}
