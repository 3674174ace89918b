using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace BlockDriver.Containerd.Tests;

/// <summary>A three-layer image as a <c>docker save</c> archive (what <c>ctr images import</c> reads), built from
/// Debian's static busybox: layer one has busybox, /etc/a.txt, /data/old.txt and /data/dir/x; layer two deletes
/// /data/old.txt (whiteout), makes /data/dir opaque with a new y, adds /etc/b.txt; layer three adds /etc/c.txt.</summary>
internal static class ImageArchive
{
    public const string Busybox = "/bin/busybox";
    public const string Reference = "docker.io/blockdriver/e2e:1";
    private static readonly DateTimeOffset Mtime = new(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static void Write(string path)
    {
        byte[][] layers =
        [
            Tar(
                Dir("bin/"),
                new PaxTarEntry(TarEntryType.RegularFile, "bin/busybox") { Mode = (UnixFileMode)0x1ED, ModificationTime = Mtime, DataStream = new MemoryStream(File.ReadAllBytes(Busybox)) },
                Symlink("bin/sh"), Symlink("bin/cat"), Symlink("bin/ls"), Symlink("bin/echo"), Symlink("bin/sync"),
                Dir("etc/"), FileEntry("etc/a.txt", "from layer one\n"),
                Dir("data/"), FileEntry("data/old.txt", "old\n"), Dir("data/dir/"), FileEntry("data/dir/x", "x\n"),
                Dir("tmp/")),
            Tar(
                Dir("data/"), FileEntry("data/.wh.old.txt", ""), Dir("data/dir/"), FileEntry("data/dir/.wh..wh..opq", ""), FileEntry("data/dir/y", "y\n"),
                Dir("etc/"), FileEntry("etc/b.txt", "from layer two\n")),
            Tar(Dir("etc/"), FileEntry("etc/c.txt", "from layer three\n")),
        ];
        string[] diffIds = [.. layers.Select(l => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(l)))];
        byte[] config = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["created"] = "2024-01-01T00:00:00Z",
            ["config"] = new Dictionary<string, object> { ["Cmd"] = new[] { "/bin/sh" }, ["Env"] = new[] { "PATH=/bin" } },
            ["rootfs"] = new Dictionary<string, object> { ["type"] = "layers", ["diff_ids"] = diffIds },
        });
        string configName = Convert.ToHexStringLower(SHA256.HashData(config)) + ".json";
        string[] layerPaths = [.. diffIds.Select(d => d["sha256:".Length..] + "/layer.tar")];
        byte[] manifest = JsonSerializer.SerializeToUtf8Bytes(new[]
        {
            new Dictionary<string, object> { ["Config"] = configName, ["RepoTags"] = new[] { "blockdriver/e2e:1" }, ["Layers"] = layerPaths },
        });

        using FileStream output = File.Create(path);
        using var writer = new TarWriter(output, TarEntryFormat.Pax);
        for (int i = 0; i < layers.Length; i++)
        {
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, layerPaths[i]) { ModificationTime = Mtime, DataStream = new MemoryStream(layers[i]) });
        }

        writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, configName) { ModificationTime = Mtime, DataStream = new MemoryStream(config) });
        writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "manifest.json") { ModificationTime = Mtime, DataStream = new MemoryStream(manifest) });
    }

    private static byte[] Tar(params TarEntry[] entries)
    {
        using var stream = new MemoryStream();
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (TarEntry entry in entries)
            {
                writer.WriteEntry(entry);
            }
        }

        return stream.ToArray();
    }

    private static PaxTarEntry Dir(string name) => new(TarEntryType.Directory, name) { Mode = (UnixFileMode)0x1ED, ModificationTime = Mtime };

    private static PaxTarEntry Symlink(string name) => new(TarEntryType.SymbolicLink, name) { LinkName = "busybox", ModificationTime = Mtime };

    private static PaxTarEntry FileEntry(string name, string content) => new(TarEntryType.RegularFile, name)
    {
        Mode = (UnixFileMode)0x1A4,
        ModificationTime = Mtime,
        DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
    };
}
