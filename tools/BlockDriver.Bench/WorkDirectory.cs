namespace BlockDriver.Bench;

/// <summary>A fresh directory for the benchmark's files, created inside a parent directory (never the parent
/// itself, so deleting it cannot touch anything else) and deleted, with everything in it, on dispose.</summary>
internal sealed class WorkDirectory : IDisposable
{
    private WorkDirectory(string path)
    {
        Path = path;
    }

    public string Path { get; }

    /// <summary>Creates <c>blockdriver-bench-XXXXXXXX</c> inside <paramref name="parent"/>; by default inside
    /// /var/tmp (disk-backed, unlike a tmpfs /tmp), else the current directory.</summary>
    public static WorkDirectory Create(string? parent)
    {
        parent ??= Directory.Exists("/var/tmp") ? "/var/tmp" : Environment.CurrentDirectory;
        string path = System.IO.Path.Combine(System.IO.Path.GetFullPath(parent), $"blockdriver-bench-{Guid.NewGuid():N}"[..26]);
        Directory.CreateDirectory(path);
        return new WorkDirectory(path);
    }

    /// <summary>The type of the file system holding the directory (ext4, xfs, tmpfs…), from /proc/mounts: the
    /// mount point that is the longest prefix of the path; "unknown" where there is no /proc/mounts.</summary>
    public string FileSystemType()
    {
        if (!File.Exists("/proc/mounts"))
        {
            return "unknown";
        }

        string type = "unknown";
        int best = -1;
        foreach (string line in File.ReadLines("/proc/mounts"))
        {
            string[] fields = line.Split(' ');
            if (fields.Length < 3)
            {
                continue;
            }

            // Mount points escape spaces as \040.
            string mountPoint = fields[1].Replace("\\040", " ", StringComparison.Ordinal);
            string prefix = mountPoint.EndsWith('/') ? mountPoint : mountPoint + "/";
            if ((Path + "/").StartsWith(prefix, StringComparison.Ordinal) && prefix.Length > best)
            {
                best = prefix.Length;
                type = fields[2];
            }
        }

        return type;
    }

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
