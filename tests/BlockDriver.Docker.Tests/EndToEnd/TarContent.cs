using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;

namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>
/// What a tar holds, entry by entry, without what may rightly differ between two builds or two storage drivers:
/// each path maps to one line of its type, mode (with setuid/setgid/sticky bits), numeric owner, link target, size,
/// SHA-256 of its content and extended attributes (PAX <c>SCHILY.xattr.*</c>: security.capability). Times are left
/// out, and so is which of a set of hard links a tar stores first (a writer's walk order decides it): each name of a
/// hard-link set shows its file's content and the whole set. The comparison for <c>docker save</c> layers and
/// <c>docker export</c> across BlockDriver and overlay2.
/// </summary>
internal static class TarContent
{
    /// <summary>The entries of a tar (gzip-compressed or not), named without a leading <c>./</c> or trailing /.</summary>
    public static SortedDictionary<string, string> Read(Stream stream)
    {
        var buffered = new BufferedStream(stream, 1 << 16);
        Span<byte> magic = stackalloc byte[2];
        int read = buffered.Read(magic);
        buffered.Seek(-read, SeekOrigin.Current);
        Stream tar = read == 2 && magic[0] == 0x1f && magic[1] == 0x8b ? new GZipStream(buffered, CompressionMode.Decompress) : buffered;
        var lines = new Dictionary<string, string>(StringComparer.Ordinal);
        var links = new Dictionary<string, string>(StringComparer.Ordinal);
        using var reader = new TarReader(tar);
        while (reader.GetNextEntry() is { } entry)
        {
            string name = Normalize(entry.Name);
            if (entry.EntryType == TarEntryType.HardLink)
            {
                links[name] = Normalize(entry.LinkName);
                continue;
            }

            string hash = "";
            if (entry.DataStream is { } data && entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile)
            {
                hash = Convert.ToHexStringLower(SHA256.HashData(data));
            }

            IEnumerable<string> xattrs = entry is PaxTarEntry pax
                ? pax.ExtendedAttributes.Where(a => a.Key.StartsWith("SCHILY.xattr.", StringComparison.Ordinal))
                    .Select(a => $"{a.Key["SCHILY.xattr.".Length..]}={Convert.ToHexStringLower(System.Text.Encoding.UTF8.GetBytes(a.Value))}")
                    .Order(StringComparer.Ordinal)
                : [];
            string type = entry.EntryType switch
            {
                TarEntryType.RegularFile or TarEntryType.V7RegularFile => "file",
                TarEntryType.Directory => "dir",
                TarEntryType.SymbolicLink => "symlink",
                TarEntryType.CharacterDevice or TarEntryType.BlockDevice when entry is PosixTarEntry device =>
                    $"{entry.EntryType} {device.DeviceMajor}:{device.DeviceMinor}",
                TarEntryType.Fifo => "fifo",
                var other => other.ToString(),
            };
            lines[name] = string.Create(CultureInfo.InvariantCulture,
                $"{type} {Convert.ToString((int)entry.Mode, 8)} {entry.Uid}:{entry.Gid} size {entry.Length} {hash} -> {entry.LinkName} [{string.Join(' ', xattrs)}]");
        }

        // Hard links: a set is the file its first entry stored and every name linked to it.
        var sets = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        foreach ((string name, string target) in links)
        {
            string root = target;
            while (links.TryGetValue(root, out string? next))
            {
                root = next;
            }

            if (!sets.TryGetValue(root, out SortedSet<string>? set))
            {
                sets[root] = set = new SortedSet<string>(StringComparer.Ordinal) { root };
            }

            set.Add(name);
        }

        var result = new SortedDictionary<string, string>(lines, StringComparer.Ordinal);
        foreach ((string root, SortedSet<string> set) in sets)
        {
            string line = lines.TryGetValue(root, out string? l) ? l : $"hard link to {root}, which the tar lacks";
            foreach (string name in set)
            {
                result[name] = $"{line} links {string.Join(',', set)}";
            }
        }

        return result;
    }

    /// <summary>The layers of a <c>docker save</c> tar (either dockerd's own format or the OCI layout of the containerd
    /// image store; both list the layers in manifest.json), base first. <paramref name="scratch"/> is an empty directory
    /// to unpack into.</summary>
    public static async Task<IReadOnlyList<SortedDictionary<string, string>>> SavedLayersAsync(string saveTar, string scratch)
    {
        Directory.CreateDirectory(scratch);
        await TarFile.ExtractToDirectoryAsync(saveTar, scratch, overwriteFiles: false);
        using JsonDocument manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(scratch, "manifest.json")));
        JsonElement image = manifest.RootElement.EnumerateArray().Single();
        var layers = new List<SortedDictionary<string, string>>();
        foreach (JsonElement layer in image.GetProperty("Layers").EnumerateArray())
        {
            await using FileStream stream = File.OpenRead(Path.Combine(scratch, layer.GetString()!));
            layers.Add(Read(stream));
        }

        return layers;
    }

    /// <summary>Fails listing (up to 30 of) the paths whose entries differ, are missing or are extra.</summary>
    public static void AssertSame(IReadOnlyDictionary<string, string> expected, IReadOnlyDictionary<string, string> actual, string what)
    {
        List<string> differences =
        [
            .. expected.Where(e => !actual.ContainsKey(e.Key)).Select(e => $"  missing {e.Key}: {e.Value}"),
            .. actual.Where(a => !expected.ContainsKey(a.Key)).Select(a => $"  extra   {a.Key}: {a.Value}"),
            .. expected.Where(e => actual.TryGetValue(e.Key, out string? a) && a != e.Value)
                .Select(e => $"  differs {e.Key}:\n    expected {e.Value}\n    actual   {actual[e.Key]}"),
        ];
        Assert.True(differences.Count == 0,
            $"{what}: {differences.Count} of {expected.Count} entries differ:\n{string.Join('\n', differences.Take(30))}");
    }

    private static string Normalize(string name)
    {
        string trimmed = name.StartsWith("./", StringComparison.Ordinal) ? name[2..] : name;
        return trimmed.TrimStart('/').TrimEnd('/');
    }
}
