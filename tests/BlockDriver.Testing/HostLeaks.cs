using System.Diagnostics;
using System.Globalization;
using BlockDriver.Interop;
using BlockDriver.Mount;

namespace BlockDriver.Testing;

/// <summary>
/// What a test or bench left on the host that refers to its directory: mounts (layer file systems, the store's FUSE
/// mount, dockerd's shm and netns mounts) at or from paths under it, loop devices backed by files under it, processes
/// whose command line names it (a blockdriver daemon, dockerd, containerd and its shims) and their descendants
/// (container processes), and extra files (a plugin socket in /run/docker/plugins). <see cref="Remove"/> undoes them
/// by hand. The one teardown of the mount, daemon, Docker and containerd suites, and of tools/BlockDriver.DockerBench
/// (linked source).
/// </summary>
public static class HostLeaks
{
    /// <summary>One line per leftover; empty when the host is clean.</summary>
    public static IReadOnlyList<string> Find(string directory, params string[] files)
    {
        string prefix = directory.TrimEnd('/') + "/";
        return
        [
            .. Devices(directory),
            .. Processes(directory).Select(p => $"process {p.Pid}: {p.CommandLine}"),
            .. files.Where(Path.Exists).Select(f => $"file {f}"),
        ];
    }

    /// <summary>The mounts and loop devices alone, one line each (<c>mount TYPE SOURCE at DIR</c>,
    /// <c>/dev/loopN -> FILE</c>): what a daemon that is still running may rightly hold.</summary>
    public static IReadOnlyList<string> Devices(string directory)
    {
        string prefix = directory.TrimEnd('/') + "/";
        return
        [
            .. Mounts(prefix).Select(m => $"mount {m.FileSystemType} {m.Source} at {m.MountPoint}"),
            .. Loops(prefix).Select(l => $"/dev/loop{l.Index} -> {l.BackingFile}"),
        ];
    }

    /// <summary><see cref="Remove"/>, throwing what it could not undo.</summary>
    /// <exception cref="InvalidOperationException">Something is left.</exception>
    public static void RemoveOrThrow(string directory, params string[] files)
    {
        IReadOnlyList<string> left = Remove(directory, files);
        if (left.Count > 0)
        {
            throw new InvalidOperationException($"left on the host after cleaning {directory}:\n{string.Join('\n', left)}");
        }
    }

    /// <summary>Kills the leftover processes (SIGKILL), lazily unmounts the file systems (deepest first), detaches the
    /// loop devices, lazily unmounts the FUSE mounts and deletes the files. Returns what it did not manage to
    /// undo.</summary>
    public static IReadOnlyList<string> Remove(string directory, params string[] files)
    {
        string prefix = directory.TrimEnd('/') + "/";
        var failures = new List<string>();
        IReadOnlyList<(int Pid, string CommandLine)> processes = Processes(directory);
        foreach ((int pid, string _) in processes)
        {
            Kill(pid);
        }

        if (processes.Count > 0)
        {
            // Their mounts and open files go as they exit.
            Thread.Sleep(500);
        }

        // Innermost first: the file systems on the loop devices, the loop devices on the FUSE files, the FUSE mounts.
        Unmount(Mounts(prefix).Where(m => !m.IsFuse).Reverse(), failures);
        foreach ((int index, string _) in Loops(prefix))
        {
            // A loop device of the store may also be mounted outside the directory.
            Unmount(MountInfoEntry.ReadAll().Where(m => m.Source == $"/dev/loop{index}").Reverse(), failures);
            try
            {
                LoopDevice.DetachDevice($"/dev/loop{index}", TimeSpan.FromSeconds(10));
            }
            catch (Exception ex)
            {
                failures.Add($"/dev/loop{index}: {ex.Message}");
            }
        }

        Unmount(Mounts(prefix).Reverse(), failures);
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

    /// <summary>Processes whose command line names a path under <paramref name="directory"/>, and all their
    /// descendants.</summary>
    public static IReadOnlyList<(int Pid, string CommandLine)> Processes(string directory)
    {
        string prefix = directory.TrimEnd('/') + "/";
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

    private static void Unmount(IEnumerable<MountInfoEntry> mounts, List<string> failures)
    {
        foreach (MountInfoEntry mount in mounts.ToList())
        {
            if (Run("umount", "-l", mount.MountPoint) is string error)
            {
                failures.Add(error);
            }
        }
    }

    private static void Kill(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            process.Kill();
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // It exited meanwhile (or is not ours to kill; Find reports it then).
        }
    }

    private static string? Run(string program, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(program, args) { UseShellExecute = false, RedirectStandardError = true })!;
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 ? null : $"{program} {string.Join(' ', args)}: exit {process.ExitCode}: {stderr.Trim()}";
    }
}
