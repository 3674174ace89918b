using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests.Support;

/// <summary><c>blockdriver serve nbd</c> as a child process: started, waited for until it prints its
/// "listening:" line, stopped with SIGTERM (the clean shutdown path) and checked to exit 0 and remove its socket.
/// <see cref="DisposeAsync"/> kills it if a test failed before stopping it.</summary>
public sealed partial class ServeProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ITestOutputHelper _log;

    private ServeProcess(Process process, string socketPath, ITestOutputHelper log)
    {
        _process = process;
        SocketPath = socketPath;
        _log = log;
    }

    public string SocketPath { get; }

    public int Pid => _process.Id;

    /// <summary>The process's resident memory (VmRSS), in bytes.</summary>
    public long ResidentBytes()
    {
        string line = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>The URI of <paramref name="export"/> (empty: the default export).</summary>
    public string Uri(string export = "") => $"nbd+unix:///{export}?socket={SocketPath}";

    public static async Task<ServeProcess> StartAsync(ITestOutputHelper log, string workingDirectory, string socketPath, params string[] args)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? ChildProcess.Locate("dotnet") ?? "dotnet";
        var start = new ProcessStartInfo(dotnet)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (string arg in (string[])[BlockDriverCli.Path, "serve", "nbd", "--socket", socketPath, .. args])
        {
            start.ArgumentList.Add(arg);
        }

        log.WriteLine($"$ blockdriver serve nbd --socket {socketPath} {string.Join(' ', args)} &");
        var server = new ServeProcess(Process.Start(start)!, socketPath, log);
        server._process.OutputDataReceived += (_, e) => server.OnLine(e.Data);
        server._process.ErrorDataReceived += (_, e) => server.OnLine(e.Data);
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();
        try
        {
            await Task.WhenAny(server._listening.Task, server._process.WaitForExitAsync()).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(server._listening.Task.IsCompleted, $"serve nbd did not start: {server.Output}");
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>SIGTERM, then waits for a clean exit: code 0, "stopped" printed, socket file gone.</summary>
    public async Task StopAsync()
    {
        Assert.Equal(0, Kill(_process.Id, 15));
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        _log.WriteLine(Output);
        Assert.True(_process.ExitCode == 0, $"serve nbd exited {_process.ExitCode}: {Output}");
        Assert.Contains("stopped", Output, StringComparison.Ordinal);
        Assert.False(File.Exists(SocketPath), "the socket file was left behind");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
            _log.WriteLine("serve nbd killed:\n" + Output);
        }

        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        if (line.StartsWith("listening:", StringComparison.Ordinal))
        {
            _listening.TrySetResult();
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
