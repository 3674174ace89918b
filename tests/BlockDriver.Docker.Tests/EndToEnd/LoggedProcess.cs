using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>A long-running child process (dockerd, <c>blockdriver daemon</c>) whose stdout and stderr lines are kept
/// and passed to a log sink as they come. Signals go by pid with kill(2). Disposing SIGKILLs it if it still runs.
/// Shared by the end-to-end tests and tools/BlockDriver.DockerBench (linked source).</summary>
internal sealed partial class LoggedProcess : IDisposable
{
    private const int SigKill = 9;
    private const int SigTerm = 15;
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _all = new();
    private readonly Action<string> _log;
    private readonly string _name;

    private LoggedProcess(string name, Process process, Action<string> log)
    {
        _name = name;
        _process = process;
        _log = log;
    }

    public int Pid { get; private set; }

    public bool HasExited => _process.HasExited;

    /// <summary>Every line written so far, stdout and stderr interleaved as they arrived.</summary>
    public string Output => string.Join('\n', _all);

    /// <summary>Starts <paramref name="program"/>; <paramref name="name"/> prefixes its lines in the log;
    /// <paramref name="environment"/> sets variables over this process's own.</summary>
    public static LoggedProcess Start(string name, string program, IEnumerable<string> args, Action<string> log,
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

        log($"$ {program} {string.Join(' ', start.ArgumentList)}");
        var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {program}");
        var logged = new LoggedProcess(name, process, log) { Pid = process.Id };
        process.OutputDataReceived += (_, e) => logged.Add(e.Data);
        process.ErrorDataReceived += (_, e) => logged.Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return logged;
    }

    /// <summary>Waits until <paramref name="condition"/> holds; throws with the process's output when it exits or the
    /// time runs out first.</summary>
    public async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!await condition().ConfigureAwait(false))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"{_name} exited ({_process.ExitCode}) before {what}:\n{Output}");
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no {what} from {_name} in {timeout}:\n{Output}");
            }

            await Task.Delay(100).ConfigureAwait(false);
        }
    }

    /// <summary>SIGTERM, then up to <paramref name="grace"/> for the exit; SIGKILL after that. Returns the exit code, or
    /// null when it had to be killed.</summary>
    public async Task<int?> StopAsync(TimeSpan grace)
    {
        if (!_process.HasExited)
        {
            Signal(SigTerm);
            try
            {
                await _process.WaitForExitAsync().WaitAsync(grace).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                _log($"{_name} did not stop within {grace} of SIGTERM: SIGKILL");
                await KillAsync().ConfigureAwait(false);
                return null;
            }
        }

        // The parameterless wait also drains the redirected output.
        await _process.WaitForExitAsync().ConfigureAwait(false);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: the process gets no chance to clean up.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            Signal(SigKill);
        }

        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
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

    /// <summary>Sends <paramref name="signal"/> to process <paramref name="pid"/>; false when it no longer exists.</summary>
    public static bool Signal(int pid, int signal)
    {
        if (kill(pid, signal) == 0)
        {
            return true;
        }

        int errno = Marshal.GetLastPInvokeError();
        const int ESRCH = 3;
        return errno == ESRCH ? false : throw new InvalidOperationException($"kill({pid}, {signal}) failed: errno {errno}");
    }

    private void Signal(int signal) => Signal(Pid, signal);

    private void Add(string? line)
    {
        if (line is null)
        {
            return;
        }

        _all.Enqueue(line);
        _log($"{_name}: {line}");
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);
}
