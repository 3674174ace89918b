using System.Globalization;

namespace BlockDriver.Interop;

/// <summary>A process holding a lock, for error messages: its pid and command line (empty when it exited or cannot
/// be read).</summary>
internal sealed record LockHolder(int Pid, string CommandLine)
{
    /// <summary>The holder <paramref name="pid"/> with its command line from /proc/PID/cmdline.</summary>
    public static LockHolder Of(int pid)
    {
        string commandLine;
        try
        {
            commandLine = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/cmdline").Replace('\0', ' ').Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // It exited since it held the lock: the pid alone is what there is to say.
            commandLine = "";
        }

        return new LockHolder(pid, commandLine);
    }

    /// <summary>"pid N (command line)", or "pid N" without one.</summary>
    public override string ToString() => CommandLine.Length == 0
        ? string.Create(CultureInfo.InvariantCulture, $"pid {Pid}")
        : string.Create(CultureInfo.InvariantCulture, $"pid {Pid} ({CommandLine})");
}
