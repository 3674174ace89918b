using System.Formats.Tar;
using System.Text;

namespace BlockDriver.Mount.Tests.Tar;

/// <summary>Builds layer tars in memory and inspects trees for the tar tests (plain directories in a temp dir: the
/// tar code works on any directory, a mounted layer being one).</summary>
internal static class TarTestTree
{
    public static readonly DateTimeOffset Mtime = new(2024, 5, 6, 7, 8, 9, TimeSpan.Zero);

    public static MemoryStream BuildTar(params TarEntry[] entries)
    {
        var stream = new MemoryStream();
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (TarEntry entry in entries)
            {
                writer.WriteEntry(entry);
            }
        }

        stream.Position = 0;
        return stream;
    }

    public static PaxTarEntry Dir(string name, UnixFileMode mode = (UnixFileMode)0x1ED) =>
        new(TarEntryType.Directory, name) { Mode = mode, ModificationTime = Mtime };

    public static PaxTarEntry File(string name, string content, int uid = 0, int gid = 0, UnixFileMode mode = (UnixFileMode)0x1A4,
        IEnumerable<KeyValuePair<string, string>>? attributes = null) =>
        new(TarEntryType.RegularFile, name, attributes ?? [])
        {
            Mode = mode,
            Uid = uid,
            Gid = gid,
            ModificationTime = Mtime,
            DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
        };

    public static PaxTarEntry Link(TarEntryType type, string name, string target) =>
        new(type, name) { LinkName = target, ModificationTime = Mtime, Mode = (UnixFileMode)0x1FF };

    public static PaxTarEntry Whiteout(string name) => new(TarEntryType.RegularFile, name) { ModificationTime = Mtime };

    /// <summary>Every path under a root, sorted, as "/a", "/a/b".</summary>
    public static List<string> Paths(string root) =>
        [.. Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Select(p => p[root.Length..]).Order(StringComparer.Ordinal)];
}
