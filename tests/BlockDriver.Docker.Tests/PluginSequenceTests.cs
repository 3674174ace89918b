using System.Formats.Tar;
using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>The calls dockerd makes to pull an image and run, inspect, commit and remove a container (reference §6),
/// over the plugin's real socket, checked against the layers' content and the store's figures.</summary>
[Collection(DockerTestCollection.Name)]
public sealed class PluginSequenceTests(ITestOutputHelper output)
{
    private const string Image1 = "1111111111111111111111111111111111111111111111111111111111111111";
    private const string Image2 = "2222222222222222222222222222222222222222222222222222222222222222";
    private const string Container = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
    private const string Init = Container + "-init";

    [Fact]
    public async Task Docker_pull_run_diff_and_remove_sequence_works_through_the_socket()
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        DaemonProcess daemon = test.StartDaemon();
        PluginClient plugin = test.Client();

        // Handshake and start-up, as dockerd does them.
        JsonElement activate = await plugin.OkAsync("/Plugin.Activate", null);
        Assert.Equal(["GraphDriver"], activate.GetProperty("Implements").EnumerateArray().Select(e => e.GetString()));
        await plugin.OkAsync("Init", new { Home = test.Dir("docker/blockdriver"), Opts = (string[]?)null, UIDMaps = (object?)null, GIDMaps = (object?)null });
        JsonElement capabilities = await plugin.OkAsync("Capabilities", new { });
        Assert.False(capabilities.GetProperty("Capabilities").GetProperty("ReproducesExactDiffs").GetBoolean());

        // Pull: the bottom layer (no Parent key at all, as dockerd omits it), then ApplyDiff with files, directories,
        // a symbolic and a hard link.
        await plugin.OkAsync("Create", new { ID = Image1 });
        Assert.True((await plugin.OkAsync("Exists", new { ID = Image1 })).GetProperty("Exists").GetBoolean());
        byte[] tar1 = LayerTar.Build(
            LayerTar.Dir("bin"),
            LayerTar.File("bin/tool", "#!/bin/sh\necho tool\n", 0x1ED),
            LayerTar.Symlink("bin/link", "tool"),
            LayerTar.Hardlink("bin/hard", "bin/tool"),
            LayerTar.Dir("etc"),
            LayerTar.File("etc/hostname", "base\n"),
            LayerTar.File("etc/keep", "keep me\n"),
            LayerTar.Dir("var"),
            LayerTar.Dir("var/cache"),
            LayerTar.File("var/cache/a", "aaaa"),
            LayerTar.File("var/cache/b", "bb"));
        PluginReply applied1 = await plugin.ApplyDiffAsync(Image1, "", tar1);
        Assert.True(applied1.Err is null, applied1.Body);
        long content1 = "#!/bin/sh\necho tool\n".Length + "base\n".Length + "keep me\n".Length + 4 + 2;
        Assert.Equal(content1, applied1.Json.GetProperty("Size").GetInt64());
        JsonElement meta1 = (await plugin.OkAsync("GetMetadata", new { ID = Image1 })).GetProperty("Metadata");
        Assert.Equal("sealed", meta1.GetProperty("State").GetString());
        Assert.Equal("image", meta1.GetProperty("Kind").GetString());
        Assert.Equal("base-fs-ext4-256M", meta1.GetProperty("Parent").GetString());
        Assert.Equal(Path.Combine(test.Root, "layers", Image1 + ".vhdx"), meta1.GetProperty("File").GetString());
        Assert.Equal(PluginTestStore.Capacity.ToString(System.Globalization.CultureInfo.InvariantCulture), meta1.GetProperty("Capacity").GetString());
        Assert.True(long.Parse(meta1.GetProperty("Size").GetString()!, System.Globalization.CultureInfo.InvariantCulture) > 0);
        Assert.False(meta1.TryGetProperty("Device", out _));

        // The second layer: a whiteout, an opaque directory with a new file in it, a new file.
        await plugin.OkAsync("Create", new { ID = Image2, Parent = Image1 });
        byte[] tar2 = LayerTar.Build(
            LayerTar.Dir("etc"),
            LayerTar.Whiteout("etc/keep"),
            LayerTar.Dir("var/cache"),
            LayerTar.Opaque("var/cache"),
            LayerTar.File("var/cache/c", "ccc"),
            LayerTar.Dir("opt"),
            LayerTar.File("opt/new", "new\n"));
        PluginReply applied2 = await plugin.ApplyDiffAsync(Image2, Image1, tar2);
        Assert.True(applied2.Err is null, applied2.Body);
        Assert.Equal(3 + 4, applied2.Json.GetProperty("Size").GetInt64());

        // dockerd rebuilds image tars through Get (ReproducesExactDiffs=false): the layer's whole tree, read-only.
        string imageDir = (await plugin.OkAsync("Get", new { ID = Image2 })).GetProperty("Dir").GetString()!;
        Assert.Equal(Path.Combine(test.Root, "mnt", Image2), imageDir);
        Assert.Equal("base\n", File.ReadAllText(Path.Combine(imageDir, "etc/hostname")));
        Assert.False(File.Exists(Path.Combine(imageDir, "etc/keep")));
        Assert.Equal(["c"], Directory.GetFileSystemEntries(Path.Combine(imageDir, "var/cache")).Select(Path.GetFileName));
        Assert.Equal("tool", new FileInfo(Path.Combine(imageDir, "bin/link")).LinkTarget);
        Assert.Equal(await InodeAsync(Path.Combine(imageDir, "bin/tool")), await InodeAsync(Path.Combine(imageDir, "bin/hard")));
        Assert.Equal("new\n", File.ReadAllText(Path.Combine(imageDir, "opt/new")));
        Assert.ThrowsAny<IOException>(() => File.WriteAllText(Path.Combine(imageDir, "etc/hostname"), "changed"));
        await plugin.OkAsync("Put", new { ID = Image2 });
        Assert.Empty(test.LayerMounts());

        // docker create: the init layer, written through Get/Put, then the container layer over it.
        await plugin.OkAsync("CreateReadWrite", new { ID = Init, Parent = Image2, MountLabel = "", StorageOpt = new Dictionary<string, string>() });
        string initDir = (await plugin.OkAsync("Get", new { ID = Init, MountLabel = "" })).GetProperty("Dir").GetString()!;
        foreach (string dir in new[] { "dev/pts", "dev/shm", "proc", "sys" })
        {
            Directory.CreateDirectory(Path.Combine(initDir, dir));
        }

        foreach (string file in new[] { ".dockerenv", "etc/resolv.conf", "etc/hosts", "etc/hostname", "dev/console" })
        {
            File.WriteAllText(Path.Combine(initDir, file), "");
        }

        File.CreateSymbolicLink(Path.Combine(initDir, "etc/mtab"), "/proc/mounts");
        await plugin.OkAsync("Put", new { ID = Init });
        await plugin.OkAsync("CreateReadWrite", new { ID = Container, Parent = Init, StorageOpt = new Dictionary<string, string> { ["size"] = PluginTestStore.BaseSize } });
        JsonElement initMeta = (await plugin.OkAsync("GetMetadata", new { ID = Init })).GetProperty("Metadata");
        Assert.Equal("sealed", initMeta.GetProperty("State").GetString());

        // docker start: Get (twice, nested, as exec and cp do), then the container writes and deletes.
        string root = (await plugin.OkAsync("Get", new { ID = Container })).GetProperty("Dir").GetString()!;
        Assert.Equal(root, (await plugin.OkAsync("Get", new { ID = Container })).GetProperty("Dir").GetString());
        Assert.Equal([root], test.LayerMounts());
        Assert.Equal("", File.ReadAllText(Path.Combine(root, "etc/hostname")));
        Assert.True(File.Exists(Path.Combine(root, ".dockerenv")));
        File.WriteAllText(Path.Combine(root, "etc/hostname"), "container\n");
        Directory.CreateDirectory(Path.Combine(root, "app"));
        File.WriteAllText(Path.Combine(root, "app/data"), "12345");
        File.Delete(Path.Combine(root, "var/cache/c"));
        await plugin.OkAsync("Put", new { ID = Container });
        Assert.Equal([root], test.LayerMounts());
        JsonElement containerMeta = (await plugin.OkAsync("GetMetadata", new { ID = Container })).GetProperty("Metadata");
        Assert.Equal("writable", containerMeta.GetProperty("State").GetString());
        Assert.StartsWith("/dev/loop", containerMeta.GetProperty("Device").GetString(), StringComparison.Ordinal);
        Assert.Equal(root, containerMeta.GetProperty("MountDir").GetString());

        // docker diff, docker ps -s, docker commit/export.
        JsonElement changes = (await plugin.OkAsync("Changes", new { ID = Container, Parent = Init })).GetProperty("Changes");
        Assert.Equal(
            ["1 /app", "1 /app/data", "0 /etc", "0 /etc/hostname", "0 /var", "0 /var/cache", "2 /var/cache/c"],
            changes.EnumerateArray().Select(c => $"{c.GetProperty("Kind").GetInt32()} {c.GetProperty("Path").GetString()}"));
        JsonElement diffSize = await plugin.OkAsync("DiffSize", new { ID = Container, Parent = Init });
        Assert.Equal("container\n".Length + "12345".Length, diffSize.GetProperty("Size").GetInt64());
        (System.Net.HttpStatusCode status, byte[] diff) = await plugin.DiffAsync(Container, Init);
        Assert.Equal(System.Net.HttpStatusCode.OK, status);
        var entries = LayerTar.Read(diff);
        Assert.Equal(
            ["app/", "app/data", "etc/hostname", "var/cache/", "var/cache/.wh.c"],
            entries.Select(e => e.Name).Where(n => n != "etc/" && n != "var/").Order(StringComparer.Ordinal));
        Assert.Equal("12345", entries.Single(e => e.Name == "app/data").Data);
        Assert.Equal("container\n", entries.Single(e => e.Name == "etc/hostname").Data);
        Assert.Equal(TarEntryType.RegularFile, entries.Single(e => e.Name == "var/cache/.wh.c").Type);

        // The init layer's own changes against the image (what a commit of it would hold).
        JsonElement initChanges = (await plugin.OkAsync("Changes", new { ID = Init, Parent = Image2 })).GetProperty("Changes");
        Assert.Contains(initChanges.EnumerateArray(), c => c.GetProperty("Path").GetString() == "/.dockerenv" && c.GetProperty("Kind").GetInt32() == 1);

        // docker info.
        Dictionary<string, string> status1 = Status(await plugin.OkAsync("Status", new { }));
        Assert.Equal("4", status1["Layers"]);
        Assert.Equal("5", status1["Store Layers"]);
        Assert.Equal("1", status1["Mounted"]);
        Assert.False(string.IsNullOrEmpty(status1["Backing Filesystem"]));
        Assert.Equal(test.Root, status1["Store"]);
        Assert.Contains("bytes", status1["Allocated"], StringComparison.Ordinal);

        // docker stop and rm; docker rmi.
        await plugin.OkAsync("Put", new { ID = Container });
        Assert.Empty(test.LayerMounts());
        await plugin.OkAsync("Remove", new { ID = Container });
        await plugin.OkAsync("Remove", new { ID = Init });
        Assert.False((await plugin.OkAsync("Exists", new { ID = Container })).GetProperty("Exists").GetBoolean());
        await plugin.OkAsync("Remove", new { ID = Image2 });
        await plugin.OkAsync("Remove", new { ID = Image1 });
        Assert.False((await plugin.OkAsync("Exists", new { ID = Image1 })).GetProperty("Exists").GetBoolean());
        Assert.Equal("0", Status(await plugin.OkAsync("Status", new { }))["Layers"]);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(test.Root, "mnt")));

        // dockerd's shutdown.
        await plugin.OkAsync("Cleanup", new { });
        Assert.Contains("Docker /GraphDriver.Changes " + Container + " -> 200", daemon.AllOutput, StringComparison.Ordinal);
        await test.StopAndCheckAsync(daemon);
    }

    private static Dictionary<string, string> Status(JsonElement reply) =>
        reply.GetProperty("Status").EnumerateArray().ToDictionary(p => p[0].GetString()!, p => p[1].GetString()!);

    // "inode links" of a path (stat(1)): a hard link shares both with its target.
    private static async Task<string> InodeAsync(string path)
    {
        ProcessResult stat = await ChildProcess.RunAsync("stat", ["-c", "%i %h", path], "/");
        Assert.Equal(0, stat.ExitCode);
        return stat.Stdout.Trim();
    }
}
