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
            if (Path.GetFileName(name).StartsWith(".wh.", StringComparison.Ordinal))
            {
                // A whiteout's mode means nothing, and overlay2's whiteouts share one inode, so its tar stores all but
                // the first as hard links to the first.
                lines[name] = "whiteout";
                continue;
            }

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
    public static async Task<IReadOnlyList<IReadOnlyDictionary<string, string>>> SavedLayersAsync(string saveTar, string scratch)
    {
        Directory.CreateDirectory(scratch);
        await TarFile.ExtractToDirectoryAsync(saveTar, scratch, overwriteFiles: false);
        using JsonDocument manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(scratch, "manifest.json")));
        JsonElement image = manifest.RootElement.EnumerateArray().Single();
        var layers = new List<IReadOnlyDictionary<string, string>>();
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
        string? differences = Differences(expected, actual, what);
        Assert.True(differences is null, differences);
    }

    /// <summary>Each layer of <paramref name="actual"/> against the same of <paramref name="expected"/>; fails with
    /// the differences of every layer that differs. Two differences that change nothing in the image are let through
    /// and told to <paramref name="note"/>: a directory entry the expected layer has and the actual lacks while its
    /// lower layers hold the same directory unchanged (overlayfs copies up every ancestor of a change), and a hard
    /// link to a file of a lower layer that one side stores with the new name and the other also with the old
    /// (overlayfs copies the linked file up; Docker's naive diff and containerd's double-walk differ on
    /// overlayfs store the new name only).</summary>
    public static void AssertSameLayers(IReadOnlyList<IReadOnlyDictionary<string, string>> expected,
        IReadOnlyList<IReadOnlyDictionary<string, string>> actual, string what, Action<string> note)
    {
        Assert.True(expected.Count == actual.Count, $"{what}: {actual.Count} layers, expected {expected.Count}");
        var lower = new Dictionary<string, string>(StringComparer.Ordinal);
        var differences = new List<string>();
        for (int i = 0; i < actual.Count; i++)
        {
            string layer = $"{what}, layer {i + 1} of {actual.Count}";
            if (Differences(expected[i], actual[i], layer, lower, note) is string difference)
            {
                differences.Add(difference);
            }

            foreach ((string name, string line) in actual[i])
            {
                lower[name] = line;
            }
        }

        Assert.True(differences.Count == 0, string.Join('\n', differences));
    }

    /// <summary>The paths whose entries differ, are missing or are extra (up to 30), or null when none does.</summary>
    public static string? Differences(IReadOnlyDictionary<string, string> expected, IReadOnlyDictionary<string, string> actual, string what) =>
        Differences(expected, actual, what, new Dictionary<string, string>(), _ => { });

    private static string? Differences(IReadOnlyDictionary<string, string> expected, IReadOnlyDictionary<string, string> actual, string what,
        IReadOnlyDictionary<string, string> lower, Action<string> note)
    {
        var differences = new List<string>();
        foreach ((string name, string line) in expected)
        {
            (string body, string[] links) = Split(line);
            if (!actual.TryGetValue(name, out string? ours))
            {
                if (body.StartsWith("dir ", StringComparison.Ordinal) && lower.GetValueOrDefault(name) == line)
                {
                    note($"{what}: {name}/ unchanged from the lower layers: in the reference's layer, not in ours");
                }
                else if (links.Length > 1 && links.Any(actual.ContainsKey))
                {
                    note($"{what}: {name} is a hard link the reference's layer copied up, ours did not");
                }
                else
                {
                    differences.Add($"  missing {name}: {line}");
                }

                continue;
            }

            (string ourBody, string[] ourLinks) = Split(ours);
            bool linksComparable = links.All(actual.ContainsKey) && ourLinks.All(expected.ContainsKey);
            if (ourBody != body || (linksComparable && !links.SequenceEqual(ourLinks)))
            {
                differences.Add($"  differs {name}:\n    expected {line}\n    actual   {ours}");
            }
        }

        foreach ((string name, string line) in actual.Where(a => !expected.ContainsKey(a.Key)))
        {
            string[] links = Split(line).Links;
            if (links.Length > 1 && links.Any(expected.ContainsKey))
            {
                note($"{what}: {name} is a hard link our layer copied up, the reference's did not");
            }
            else
            {
                differences.Add($"  extra   {name}: {line}");
            }
        }

        return differences.Count == 0
            ? null
            : $"{what}: {differences.Count} of {expected.Count} entries differ:\n{string.Join('\n', differences.Take(30))}";
    }

    private static (string Body, string[] Links) Split(string line)
    {
        int at = line.IndexOf(" links ", StringComparison.Ordinal);
        return at < 0 ? (line, []) : (line[..at], line[(at + " links ".Length)..].Split(','));
    }

    private static string Normalize(string name)
    {
        string trimmed = name.StartsWith("./", StringComparison.Ordinal) ? name[2..] : name;
        return trimmed.TrimStart('/').TrimEnd('/');
    }
}
