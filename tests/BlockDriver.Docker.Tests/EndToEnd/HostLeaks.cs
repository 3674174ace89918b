using System.Diagnostics;
using System.Globalization;
using BlockDriver.Fuse;
using BlockDriver.Mount;

namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>
/// What a run left on the host that refers to its directory: mounts (file systems, the store's FUSE mount, dockerd's
/// shm and netns mounts) at or from paths under it, loop devices backed by files under it, processes whose command
/// line names it (dockerd, its containerd, containerd-shim-runc-v2, the blockdriver daemon) and their descendants
/// (container processes), and extra files (the plugin socket in /run/docker/plugins). <see cref="Remove"/> undoes
/// them by hand. Shared by the end-to-end tests and tools/BlockDriver.DockerBench (linked source).
/// </summary>
internal static class HostLeaks
{
    private const int SigKill = 9;

    /// <summary>One line per leftover; empty when the host is clean.</summary>
    public static IReadOnlyList<string> Find(string directory, params string[] files)
    {
        string prefix = directory.TrimEnd('/') + "/";
        return
        [
            .. Mounts(prefix).Select(m => $"mount {m.FileSystemType} {m.Source} at {m.MountPoint}"),
            .. Loops(prefix).Select(l => $"/dev/loop{l.Index} -> {l.BackingFile}"),
            .. Processes(prefix).Select(p => $"process {p.Pid}: {p.CommandLine}"),
            .. files.Where(Path.Exists).Select(f => $"file {f}"),
        ];
    }

    /// <summary>Kills the leftover processes (SIGKILL), lazily unmounts the file systems (deepest first, the FUSE
    /// mount last), detaches the loop devices and deletes the files. Returns what it did not manage to undo.</summary>
    public static IReadOnlyList<string> Remove(string directory, params string[] files)
    {
        string prefix = directory.TrimEnd('/') + "/";
        var failures = new List<string>();
        foreach ((int pid, string commandLine) in Processes(prefix))
        {
            LoggedProcess.Signal(pid, SigKill);
        }

        Thread.Sleep(500);
        foreach (MountInfoEntry mount in Mounts(prefix).Where(m => !m.IsFuse).Reverse().Concat(Mounts(prefix).Where(m => m.IsFuse)))
        {
            if (Run("umount", "-l", mount.MountPoint) is string error)
            {
                failures.Add(error);
            }
        }

        foreach ((int index, string _) in Loops(prefix))
        {
            try
            {
                LoopDevice.DetachDevice($"/dev/loop{index}", TimeSpan.FromSeconds(10));
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or TimeoutException)
            {
                failures.Add($"/dev/loop{index}: {ex.Message}");
            }
        }

        foreach (string file in files.Where(File.Exists))
        {
            File.Delete(file);
        }

        return [.. failures, .. Find(directory, files)];
    }

    private static IEnumerable<MountInfoEntry> Mounts(string prefix) =>
        MountInfoEntry.ReadAll().Where(m => m.MountPoint.StartsWith(prefix, StringComparison.Ordinal) || m.Source.StartsWith(prefix, StringComparison.Ordinal));

    private static IEnumerable<(int Index, string BackingFile)> Loops(string prefix) =>
        LoopDevice.ListBound().Where(b => b.BackingFile.StartsWith(prefix, StringComparison.Ordinal));

    /// <summary>Processes whose command line contains <paramref name="prefix"/>, and all their descendants.</summary>
    private static List<(int Pid, string CommandLine)> Processes(string prefix)
    {
        var all = new Dictionary<int, (int Parent, string CommandLine)>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                string commandLine = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim();

                // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so parse after the last ')'.
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                all[pid] = (int.Parse(fields[1], CultureInfo.InvariantCulture), commandLine);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The process exited while being read: it is not a leftover.
            }
        }

        var found = all.Where(p => p.Value.CommandLine.Contains(prefix, StringComparison.Ordinal)).Select(p => p.Key).ToHashSet();
        for (bool grew = true; grew;)
        {
            grew = false;
            foreach ((int pid, (int parent, string _)) in all)
            {
                if (found.Contains(parent) && found.Add(pid))
                {
                    grew = true;
                }
            }
        }

        return [.. found.Order().Select(pid => (pid, all[pid].CommandLine))];
    }

    private static string? Run(string program, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args) { UseShellExecute = false, RedirectStandardError = true })!;
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 ? null : $"{program} {string.Join(' ', args)}: exit {process.ExitCode}: {stderr.Trim()}";
    }
}
