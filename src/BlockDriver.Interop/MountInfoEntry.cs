using System.Globalization;
using System.Text;

namespace BlockDriver.Interop;

/// <summary>One line of /proc/self/mountinfo (proc(5)): where something is mounted, its type and its device.</summary>
/// <param name="MountId">The mount's unique id (field 1).</param>
/// <param name="Major">Major number of st_dev for files in the mount (0 for FUSE).</param>
/// <param name="Minor">Minor number of st_dev; for FUSE, the connection's number under /sys/fs/fuse/connections.</param>
/// <param name="MountPoint">The mount point, unescaped.</param>
/// <param name="FileSystemType">For example "fuse.blockdriver" or "ext4".</param>
/// <param name="Source">The mount source, unescaped.</param>
public sealed record MountInfoEntry(int MountId, int Major, int Minor, string MountPoint, string FileSystemType, string Source)
{
    /// <summary>The directory of the file system that is mounted there ("/" for the whole file system; a bind mount
    /// of a subdirectory shows that directory).</summary>
    public string Root { get; init; } = "/";

    /// <summary>True for "fuse" and "fuse.*" (not fuseblk, not fusectl).</summary>
    public bool IsFuse => FileSystemType == "fuse" || FileSystemType.StartsWith("fuse.", StringComparison.Ordinal);

    /// <summary>The FUSE connection number (the kernel's dev_t of the super block, as /sys/fs/fuse/connections
    /// names it): the minor for the anonymous major 0.</summary>
    public int ConnectionId => (Major << 20) | Minor;

    /// <summary>Reads the calling process's mount table. Reading it never touches the mounted file systems, so it is
    /// safe for mounts whose server is dead or hung.</summary>
    public static IReadOnlyList<MountInfoEntry> ReadAll()
    {
        var entries = new List<MountInfoEntry>();
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            if (TryParse(line, out MountInfoEntry? entry))
            {
                entries.Add(entry);
            }
        }

        return entries;
    }

    /// <summary>Parses one mountinfo line: <c>id parent major:minor root mountpoint options [optional...] - type source
    /// superoptions</c>.</summary>
    public static bool TryParse(string line, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out MountInfoEntry? entry)
    {
        ArgumentNullException.ThrowIfNull(line);
        entry = null;
        string[] fields = line.Split(' ');
        int separator = fields.Length < 10 ? -1 : Array.IndexOf(fields, "-", 6);
        if (separator < 0 || separator + 2 >= fields.Length)
        {
            return false;
        }

        string[] device = fields[2].Split(':');
        if (device.Length != 2
            || !int.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out int id)
            || !int.TryParse(device[0], NumberStyles.None, CultureInfo.InvariantCulture, out int major)
            || !int.TryParse(device[1], NumberStyles.None, CultureInfo.InvariantCulture, out int minor))
        {
            return false;
        }

        entry = new MountInfoEntry(id, major, minor, Unescape(fields[4]), fields[separator + 1], Unescape(fields[separator + 2])) { Root = Unescape(fields[3]) };
        return true;
    }

    // The kernel escapes space, tab, newline and backslash as \ooo (octal) in paths (fs/proc_namespace.c, mangle).
    private static string Unescape(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var bytes = new List<byte>(field.Length);
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && IsOctal(field, i + 1))
            {
                bytes.Add((byte)(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) | (field[i + 3] - '0')));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(field[i].ToString()));
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsOctal(string field, int at) =>
        at + 2 < field.Length && field[at] is >= '0' and <= '3' && field[at + 1] is >= '0' and <= '7' && field[at + 2] is >= '0' and <= '7';
}
