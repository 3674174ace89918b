using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Xunit.Abstractions;

namespace BlockDriver.Testing;

/// <summary>A running child process (the blockdriver daemon, containerd): its output lines as they come (also echoed
/// to the current test's output), SIGTERM and SIGKILL. Disposing kills it if it still runs.</summary>
public sealed class DaemonProcess : IDisposable
{
    private readonly Process _process;
    private readonly BlockingCollection<string> _lines = [];
    private readonly ConcurrentQueue<string> _all = new();
    private readonly string _label;

    private DaemonProcess(Process process, string label)
    {
        _process = process;
        _label = label;
    }

    /// <summary>Where lines are echoed; the fixture points it at the running test.</summary>
    public ITestOutputHelper? Output { get; set; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>The exit code, once it has exited.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>Every line written so far, stdout and stderr.</summary>
    public string AllOutput => string.Join('\n', _all);

    /// <summary>Starts <paramref name="program"/>; <paramref name="label"/> prefixes its lines in the test output
    /// and names it in errors.</summary>
    public static DaemonProcess Start(string label, string program, IEnumerable<string> args, ITestOutputHelper? output,
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

        var daemon = new DaemonProcess(Process.Start(start)!, label) { Output = output };
        daemon._process.OutputDataReceived += (_, e) => daemon.Add(e.Data);
        daemon._process.ErrorDataReceived += (_, e) => daemon.Add(e.Data);
        daemon._process.BeginOutputReadLine();
        daemon._process.BeginErrorReadLine();
        return daemon;
    }

    /// <summary>Waits for a line containing <paramref name="text"/>; throws with the output so far when the process
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
                throw new InvalidOperationException($"{_label} exited ({_process.ExitCode}) before '{text}':\n{AllOutput}");
            }
        }

        throw new TimeoutException($"no '{text}' from {_label} in {timeout}:\n{AllOutput}");
    }

    /// <summary>Sends SIGTERM and waits for the exit; returns the exit code.</summary>
    public async Task<int> TerminateAsync()
    {
        Signal("TERM");
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no chance to clean up.</summary>
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
            Output?.WriteLine($"{_label}: {line}");
        }
        catch (InvalidOperationException)
        {
            // The test has finished; xunit no longer takes its output.
        }
    }
}
