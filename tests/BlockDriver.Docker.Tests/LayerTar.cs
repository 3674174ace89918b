using System.Formats.Tar;
using System.Text;

namespace BlockDriver.Docker.Tests;

/// <summary>Builds layer tars (what dockerd sends to ApplyDiff) and reads the ones Diff returns.</summary>
internal static class LayerTar
{
    public static PaxTarEntry Dir(string name, int mode = 0x1ED) =>
        new(TarEntryType.Directory, name.EndsWith('/') ? name : name + "/") { Mode = (UnixFileMode)mode };

    public static PaxTarEntry File(string name, string content, int mode = 0x1A4) =>
        new(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)mode, DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) };

    public static PaxTarEntry Symlink(string name, string target) =>
        new(TarEntryType.SymbolicLink, name) { LinkName = target, Mode = (UnixFileMode)0x1FF };

    public static PaxTarEntry Hardlink(string name, string target) =>
        new(TarEntryType.HardLink, name) { LinkName = target, Mode = (UnixFileMode)0x1A4 };

    /// <summary><c>DIR/.wh.NAME</c>: deletes DIR/NAME of the lower layers.</summary>
    public static PaxTarEntry Whiteout(string path)
    {
        string dir = Path.GetDirectoryName(path) is { Length: > 0 } d ? d + "/" : "";
        return new PaxTarEntry(TarEntryType.RegularFile, $"{dir}.wh.{Path.GetFileName(path)}") { Mode = 0 };
    }

    /// <summary><c>DIR/.wh..wh..opq</c>: hides everything the lower layers have in DIR.</summary>
    public static PaxTarEntry Opaque(string dir) => new(TarEntryType.RegularFile, dir.TrimEnd('/') + "/.wh..wh..opq") { Mode = 0 };

    public static byte[] Build(params PaxTarEntry[] entries)
    {
        using var buffer = new MemoryStream();
        using (var writer = new TarWriter(buffer, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (PaxTarEntry entry in entries)
            {
                writer.WriteEntry(entry);
            }
        }

        return buffer.ToArray();
    }

    /// <summary>The entries of <paramref name="tar"/>, in order: name, type, content (regular files) or link target.</summary>
    public static List<(string Name, TarEntryType Type, string Data)> Read(byte[] tar)
    {
        var entries = new List<(string, TarEntryType, string)>();
        using var reader = new TarReader(new MemoryStream(tar));
        while (reader.GetNextEntry() is TarEntry entry)
        {
            string data = entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile && entry.DataStream is { } stream
                ? new StreamReader(stream, Encoding.UTF8).ReadToEnd()
                : entry.LinkName;
            entries.Add((entry.Name, entry.EntryType, data));
        }

        return entries;
    }
}
