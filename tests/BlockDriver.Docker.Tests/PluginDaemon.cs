using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>A running <c>blockdriver daemon</c>: its output lines as they come (also echoed to the test output),
/// SIGTERM and SIGKILL. Disposing kills it if it still runs.</summary>
internal sealed class PluginDaemon : IDisposable
{
    private readonly Process _process;
    private readonly BlockingCollection<string> _lines = [];
    private readonly ConcurrentQueue<string> _all = new();
    private readonly ITestOutputHelper _output;

    private PluginDaemon(Process process, ITestOutputHelper output)
    {
        _process = process;
        _output = output;
    }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Every line written so far, stdout and stderr.</summary>
    public string Output => string.Join('\n', _all);

    public static PluginDaemon Start(string program, IEnumerable<string> args, ITestOutputHelper output)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var daemon = new PluginDaemon(Process.Start(start)!, output);
        daemon._process.OutputDataReceived += (_, e) => daemon.Add(e.Data);
        daemon._process.ErrorDataReceived += (_, e) => daemon.Add(e.Data);
        daemon._process.BeginOutputReadLine();
        daemon._process.BeginErrorReadLine();
        return daemon;
    }

    /// <summary>Waits for a line containing <paramref name="text"/>; throws with the output so far when the daemon
    /// exits or the time runs out first.</summary>
    public string WaitForLine(string text, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_lines.TryTake(out string? line, 200))
            {
                if (line.Contains(text, StringComparison.Ordinal))
                {
                    return line;
                }
            }
            else if (_process.HasExited)
            {
                throw new InvalidOperationException($"the daemon exited ({_process.ExitCode}) before '{text}':\n{Output}");
            }
        }

        throw new TimeoutException($"no '{text}' from the daemon in {timeout}:\n{Output}");
    }

    /// <summary>Waits for the process to exit by itself; returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        await _process.WaitForExitAsync().WaitAsync(timeout);
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>Sends SIGTERM and waits for the exit; returns the exit code.</summary>
    public async Task<int> TerminateAsync()
    {
        Signal("TERM");
        return await WaitForExitAsync(TimeSpan.FromMinutes(2));
    }

    /// <summary>SIGKILL: the daemon gets no chance to clean up.</summary>
    public async Task KillAsync()
    {
        Signal("KILL");
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }

        _process.Dispose();
    }

    private void Signal(string name)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-" + name, Pid.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false })!;
        kill.WaitForExit();
    }

    private void Add(string? line)
    {
        if (line is null)
        {
            return;
        }

        _all.Enqueue(line);
        _lines.Add(line);
        try
        {
            _output.WriteLine("daemon: " + line);
        }
        catch (InvalidOperationException)
        {
            // The test has finished; xunit no longer takes its output.
        }
    }
}
