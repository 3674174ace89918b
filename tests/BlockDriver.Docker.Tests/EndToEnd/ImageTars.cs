using System.Diagnostics;
using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>
/// Images without a registry, built with System.Formats.Tar from Debian busybox-static's /bin/busybox:
/// <list type="bullet">
/// <item><see cref="WriteBusyboxRootfs"/>: a root file system tar for <c>docker import</c>: bin/busybox, a symbolic
/// link per applet of <c>busybox --list</c>, /etc/passwd and group, /data with two small text files, /tmp, /root.</item>
/// <item><see cref="WriteLayeredImage"/>: a <c>docker save</c>-format tar for <c>docker load</c> (manifest.json,
/// repositories, the config JSON whose rootfs.diff_ids are the SHA-256 of each layer tar, the layer tars) with three
/// layers: the busybox root file system plus /data and /opq files; a layer deleting /data/gone.txt (whiteout
/// <c>.wh.gone.txt</c>), changing /etc/motd and adding /opq/mid.txt; a layer making /opq opaque
/// (<c>.wh..wh..opq</c>) with only /opq/upper.txt and adding /app/version.</item>
/// </list>
/// Content, times and owners are fixed and the ustar format records no access or change times, so the digests are
/// the same on every run. Shared by the end-to-end tests
/// and tools/BlockDriver.DockerBench (linked source).
/// </summary>
internal static class ImageTars
{
    public const string Busybox = "/bin/busybox";

    /// <summary>What the layered image shows at /opq: only the top layer's entries (the opaque whiteout hides the lower
    /// layers' lower.txt, sub/ and mid.txt).</summary>
    public const string OpaqueListing = "upper.txt";

    /// <summary>/etc/motd of the layered image (the second layer replaced the first's).</summary>
    public const string LayeredMotd = "motd of layer two";

    private const string Created = "2026-01-02T03:04:05Z";
    private static readonly DateTimeOffset Mtime = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    /// <summary>The applets of /bin/busybox, from <c>busybox --list</c> (without busybox itself).</summary>
    public static IReadOnlyList<string> Applets()
    {
        if (!File.Exists(Busybox))
        {
            throw new InvalidOperationException($"{Busybox} is missing: install Debian's busybox-static (apt-get install busybox-static; .ci/run does).");
        }

        using var process = Process.Start(new ProcessStartInfo(Busybox, ["--list"]) { RedirectStandardOutput = true, UseShellExecute = false })!;
        string list = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0
            ? [.. list.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(a => a != "busybox")]
            : throw new InvalidOperationException($"{Busybox} --list exited {process.ExitCode}");
    }

    /// <summary>Writes the root file system tar for <c>docker import</c>.</summary>
    public static void WriteBusyboxRootfs(string path)
    {
        using FileStream file = File.Create(path);
        file.Write(Tar([.. RootfsEntries(), Dir("data/"), Text("data/hello.txt", "hello from the image\n"), Text("data/numbers.txt", Numbers())]));
    }

    /// <summary>Writes the <c>docker save</c>-format tar of the three-layer image, tagged <paramref name="repository"/>:<paramref name="tag"/>.</summary>
    public static void WriteLayeredImage(string path, string repository, string tag)
    {
        byte[][] layers =
        [
            Tar(
            [
                .. RootfsEntries(),
                Text("etc/motd", "motd of layer one\n"),
                Dir("data/"),
                Text("data/keep.txt", "kept from layer one\n"),
                Text("data/gone.txt", "deleted by layer two\n"),
                Dir("opq/"),
                Text("opq/lower.txt", "hidden by the opaque directory\n"),
                Dir("opq/sub/"),
                Text("opq/sub/deep.txt", "hidden as well\n"),
            ]),
            Tar(
            [
                Dir("data/"),
                Text("data/.wh.gone.txt", "", (UnixFileMode)0),
                Dir("etc/"),
                Text("etc/motd", LayeredMotd + "\n"),
                Dir("opq/"),
                Text("opq/mid.txt", "hidden by the next layer's opaque whiteout\n"),
            ]),
            Tar(
            [
                Dir("opq/"),
                Text("opq/.wh..wh..opq", "", (UnixFileMode)0),
                Text("opq/upper.txt", "the only entry of /opq\n"),
                Dir("app/"),
                Text("app/version", "3\n"),
            ]),
        ];
        string[] layerDirs = [.. layers.Select(l => Convert.ToHexStringLower(SHA256.HashData(l)))];
        var config = new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["created"] = Created,
            ["config"] = new JsonObject
            {
                ["Env"] = new JsonArray("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
                ["Cmd"] = new JsonArray("sh"),
            },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray([.. layerDirs.Select(d => JsonValue.Create("sha256:" + d))]) },
            ["history"] = new JsonArray([.. layerDirs.Select((_, i) => new JsonObject { ["created"] = Created, ["created_by"] = $"layer {i + 1}" })]),
        };
        byte[] configBytes = Encoding.UTF8.GetBytes(config.ToJsonString());
        string configName = Convert.ToHexStringLower(SHA256.HashData(configBytes)) + ".json";
        var manifest = new JsonArray(new JsonObject
        {
            ["Config"] = configName,
            ["RepoTags"] = new JsonArray($"{repository}:{tag}"),
            ["Layers"] = new JsonArray([.. layerDirs.Select(d => JsonValue.Create(d + "/layer.tar"))]),
        });
        var repositories = new JsonObject { [repository] = new JsonObject { [tag] = layerDirs[^1] } };

        var entries = new List<TarEntry>();
        foreach ((string dir, byte[] layer) in layerDirs.Zip(layers))
        {
            entries.Add(Dir(dir + "/"));
            entries.Add(Bytes(dir + "/layer.tar", layer, (UnixFileMode)0x1A4));
        }

        entries.Add(Bytes(configName, configBytes, (UnixFileMode)0x1A4));
        entries.Add(Text("manifest.json", manifest.ToJsonString()));
        entries.Add(Text("repositories", repositories.ToJsonString(new JsonSerializerOptions { WriteIndented = false })));
        using FileStream file = File.Create(path);
        file.Write(Tar(entries));
    }

    private static List<TarEntry> RootfsEntries()
    {
        var entries = new List<TarEntry>
        {
            Dir("bin/"),
            Bytes("bin/busybox", File.ReadAllBytes(Busybox), (UnixFileMode)0x1ED),
        };
        entries.AddRange(Applets().Select(a => (TarEntry)new UstarTarEntry(TarEntryType.SymbolicLink, "bin/" + a) { LinkName = "busybox", ModificationTime = Mtime }));
        entries.Add(Dir("etc/"));
        entries.Add(Text("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"));
        entries.Add(Text("etc/group", "root:x:0:\nnogroup:x:65534:\n"));
        entries.Add(Dir("tmp/", (UnixFileMode)0x3FF));
        entries.Add(Dir("root/", (UnixFileMode)0x1C0));
        return entries;
    }

    private static string Numbers() => string.Concat(Enumerable.Range(1, 1000).Select(i => $"{i}\n"));

    private static UstarTarEntry Dir(string name, UnixFileMode mode = (UnixFileMode)0x1ED) =>
        new(TarEntryType.Directory, name) { Mode = mode, ModificationTime = Mtime };

    private static UstarTarEntry Text(string name, string content, UnixFileMode mode = (UnixFileMode)0x1A4) =>
        Bytes(name, Encoding.UTF8.GetBytes(content), mode);

    private static UstarTarEntry Bytes(string name, byte[] content, UnixFileMode mode) =>
        new(TarEntryType.RegularFile, name) { Mode = mode, ModificationTime = Mtime, DataStream = new MemoryStream(content) };

    private static byte[] Tar(IEnumerable<TarEntry> entries)
    {
        using var stream = new MemoryStream();
        using (var writer = new TarWriter(stream, TarEntryFormat.Ustar, leaveOpen: true))
        {
            foreach (TarEntry entry in entries)
            {
                writer.WriteEntry(entry);
            }
        }

        return stream.ToArray();
    }
}
