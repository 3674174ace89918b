using System.Formats.Tar;
using System.Text;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

/// <summary><c>layer apply</c>, <c>layer changes</c>, <c>layer diff</c> and the mountable default of
/// <c>layer create</c>, with real mounts (FUSE file, loop device, ext4): a busybox image, a container with
/// whiteouts, its diff replayed on a second container, hostile tars. Every test ends by checking that nothing of the
/// store is left mounted or attached.</summary>
public sealed class LayerContentCommandTests(ITestOutputHelper output) : LayerStoreTests(output)
{
    private const string Busybox = "/bin/busybox";
    private static readonly DateTimeOffset Mtime = new(2024, 5, 6, 7, 8, 9, TimeSpan.Zero);

    [Fact]
    public async Task Changes_and_diff_of_a_container_with_whiteouts_replay_on_another_container()
    {
        Assert.True(File.Exists(Busybox), "/bin/busybox is missing: install Debian's busybox-static (CI does).");
        try
        {
            // The image: a busybox root file system over the base file system layer of 64 MiB.
            Assert.Equal("img", (await StoreOkAsync("layer", "create", "--id", "img", "--size", "64M")).Stdout.Trim());
            await StoreOkAsync("layer", "apply", "img", WriteTar("rootfs.tar", Rootfs()));
            Assert.Equal(
                ["A /bin", "A /bin/busybox", "A /bin/cat", "A /bin/ls", "A /bin/sh", "A /etc", "A /etc/group", "A /etc/passwd"],
                await ChangesAsync("img"));
            await StoreOkAsync("layer", "seal", "img");
            Assert.Equal("base-fs-ext4-64M", (await InspectAsync("img")).GetProperty("parent").GetString());

            // A container over it, changed by a second tar with whiteouts.
            await StoreOkAsync("layer", "create", "--parent", "img", "--id", "c1");
            await StoreOkAsync("layer", "apply", "c1", WriteTar("second.tar", SecondLayer()));
            string[] expected = ["A /srv", "A /srv/app.txt", "C /bin", "C /etc", "C /etc/passwd", "D /bin/ls", "D /etc/group"];
            Assert.Equal(expected, await ChangesAsync("c1"));
            string json = (await StoreOkAsync("layer", "changes", "c1", "--json")).Stdout;
            Assert.Equal(expected, ParseJson(json).EnumerateArray()
                .Select(c => $"{c.GetProperty("kind").GetString()![0] switch { 'a' => 'A', 'm' => 'C', _ => 'D' }} {c.GetProperty("path").GetString()}")
                .Order(StringComparer.Ordinal));

            // Its diff: the changed and added entries, deletions as whiteouts; the same bytes to a file or stdout.
            string diff = PathOf("c1.diff.tar");
            await StoreOkAsync("layer", "diff", "c1", "-o", diff);
            Dictionary<string, TarEntryType> entries = ReadTar(diff);
            Assert.Equal(["bin", "bin/.wh.ls", "etc", "etc/.wh.group", "etc/passwd", "srv", "srv/app.txt"], entries.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(TarEntryType.Directory, entries["srv"]);
            Assert.Equal(TarEntryType.Directory, entries["etc"]);
            Assert.Equal("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/srv:/bin/sh\n", ReadTarText(diff, "etc/passwd"));
            await ShellOkAsync($"{Cli} layer diff c1 > stdout.diff.tar");
            Assert.Equal(entries, ReadTar(PathOf("stdout.diff.tar")));

            // Replayed on a fresh container of the same image, from standard input: the same changes.
            await StoreOkAsync("layer", "create", "--parent", "img", "--id", "c2");
            await ShellOkAsync($"{Cli} layer apply c2 - < c1.diff.tar");
            Assert.Equal(expected, await ChangesAsync("c2"));
        }
        finally
        {
            await AssertNothingAttachedAsync();
        }
    }

    [Fact]
    public async Task Hostile_tars_are_refused_with_one_line_and_leave_the_layer_usable()
    {
        string outside = PathOf("outside");
        Directory.CreateDirectory(outside);
        await File.WriteAllTextAsync(Path.Combine(outside, "secret"), "keep");
        try
        {
            await StoreOkAsync("layer", "create", "--id", "w", "--size", "64M");

            string climbing = WriteTar("climbing.tar", BuildTar(TextFile("ok.txt", "fine\n"), TextFile("../../escape", "pwned")));
            AssertError(await StoreAsync("layer", "apply", "w", climbing), 1, "\"../../escape\" points outside the layer. Layer w keeps the entries applied before it");

            string through = WriteTar("through.tar", BuildTar(
                new PaxTarEntry(TarEntryType.SymbolicLink, "evil") { LinkName = outside, ModificationTime = Mtime },
                TextFile("evil/secret", "pwned")));
            AssertError(await StoreAsync("layer", "apply", "w", through), 1, "evil");

            Assert.Equal("keep", await File.ReadAllTextAsync(Path.Combine(outside, "secret")));
            Assert.Equal([Path.Combine(outside, "secret")], Directory.GetFiles(outside));
            Assert.Empty(Directory.GetFiles(Temp.FullName, "escape", SearchOption.AllDirectories));

            // The layer is still mountable and writable: a good tar applies, and what the refused ones did inside is
            // what changes shows (the entries before the refused one).
            await StoreOkAsync("layer", "apply", "w", WriteTar("good.tar", BuildTar(TextFile("good.txt", "good\n"))));
            Assert.Equal(["A /evil", "A /good.txt", "A /ok.txt"], await ChangesAsync("w"));
        }
        finally
        {
            await AssertNothingAttachedAsync();
        }
    }

    [Fact]
    public async Task Default_create_is_mountable_and_blank_create_is_a_blank_disk()
    {
        try
        {
            // No flags: a child of the 10 GiB base file system layer, which is made once and listed like any layer.
            Assert.Equal("plain", (await StoreOkAsync("layer", "create", "--id", "plain")).Stdout.Trim());
            await StoreOkAsync("layer", "apply", "plain", WriteTar("one.tar", BuildTar(TextFile("hello.txt", "hello\n"))));
            Assert.Equal(["A /hello.txt"], await ChangesAsync("plain"));
            System.Text.Json.JsonElement plain = await InspectAsync("plain");
            Assert.Equal("base-fs-ext4", plain.GetProperty("parent").GetString());
            Assert.Equal("image", plain.GetProperty("kind").GetString());
            Assert.Equal(10L << 30, plain.GetProperty("capacity").GetInt64());
            await StoreOkAsync("layer", "create", "--id", "second");
            Assert.Equal(["base-fs-ext4", "plain", "second"], (await IdsAsync()).Order(StringComparer.Ordinal));

            // --blank: no parent, no file system, nothing to mount.
            await StoreOkAsync("layer", "create", "--blank", "--id", "blank", "--size", "64M");
            System.Text.Json.JsonElement blank = await InspectAsync("blank");
            Assert.Equal(System.Text.Json.JsonValueKind.Null, blank.GetProperty("parent").ValueKind);
            Assert.Equal(64 * MiB, blank.GetProperty("capacity").GetInt64());
            AssertError(await StoreAsync("layer", "apply", "blank", PathOf("one.tar")), 1, "the layer holds no ext4 file system");

            AssertError(await StoreAsync("layer", "create", "--blank", "--parent", "plain"), 1, "--blank and --parent cannot be used together");
            AssertError(await StoreAsync("layer", "create", "--id", "plain", "--size", "32M"), 1, "layer plain already exists.");
            Assert.DoesNotContain("base-fs-ext4-32M", await IdsAsync());
        }
        finally
        {
            await AssertNothingAttachedAsync();
        }
    }

    [Fact]
    public async Task Apply_to_a_sealed_layer_and_a_missing_tar_are_refused()
    {
        try
        {
            await StoreOkAsync("layer", "create", "--id", "img", "--size", "64M");
            await StoreOkAsync("layer", "seal", "img");
            string tar = WriteTar("t.tar", BuildTar(TextFile("a", "a")));
            AssertError(await StoreAsync("layer", "apply", "img", tar), 1, "layer img is sealed");
            AssertError(await StoreAsync("layer", "apply", "img", PathOf("missing.tar")), 1, "missing.tar: no such file.");
            AssertError(await StoreAsync("layer", "changes", "nope"), 1, "no layer nope");
        }
        finally
        {
            await AssertNothingAttachedAsync();
        }
    }

    // The CLI as a shell command with --root, for redirections (stdin "-", stdout diff).
    private string Cli
    {
        get
        {
            string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? ChildProcess.Locate("dotnet") ?? "dotnet";
            return $"'{dotnet}' '{Path.Combine(AppContext.BaseDirectory, "blockdriver.dll")}' --root '{Root}'";
        }
    }

    private async Task ShellOkAsync(string command)
    {
        ProcessResult result = await ChildProcess.RunAsync("/bin/sh", ["-c", command], Temp.FullName);
        Output.WriteLine($"$ {command}\n{result}");
        Assert.True(result.ExitCode == 0, $"{command} failed: {result}");
    }

    private async Task<string[]> ChangesAsync(string id) =>
        (await StoreOkAsync("layer", "changes", id)).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToArray();

    // No mount and no loop device refers to the store once the commands have exited.
    private async Task AssertNothingAttachedAsync()
    {
        string[] mounts = [.. File.ReadAllLines("/proc/self/mountinfo").Where(l => l.Contains(Root, StringComparison.Ordinal))];
        Assert.True(mounts.Length == 0, "left mounted: " + string.Join("; ", mounts));
        ProcessResult loops = await ChildProcess.RunAsync("losetup", ["-a"], Temp.FullName);
        Assert.Equal(0, loops.ExitCode);
        Assert.DoesNotContain(Root, loops.Stdout, StringComparison.Ordinal);
    }

    private string WriteTar(string name, MemoryStream tar)
    {
        string path = PathOf(name);
        File.WriteAllBytes(path, tar.ToArray());
        return path;
    }

    // bin/busybox (Debian's static binary), applets as symbolic links and one as a hard link, /etc/passwd and group.
    private static MemoryStream Rootfs() => BuildTar(
        Dir("bin/"),
        new PaxTarEntry(TarEntryType.RegularFile, "bin/busybox")
        {
            Mode = (UnixFileMode)0x1ED,
            ModificationTime = Mtime,
            DataStream = new MemoryStream(File.ReadAllBytes(Busybox)),
        },
        new PaxTarEntry(TarEntryType.SymbolicLink, "bin/sh") { LinkName = "busybox", ModificationTime = Mtime },
        new PaxTarEntry(TarEntryType.SymbolicLink, "bin/ls") { LinkName = "busybox", ModificationTime = Mtime },
        new PaxTarEntry(TarEntryType.HardLink, "bin/cat") { LinkName = "bin/busybox", ModificationTime = Mtime },
        Dir("etc/"),
        TextFile("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        TextFile("etc/group", "root:x:0:\n"));

    // Deletes /bin/ls and /etc/group, rewrites /etc/passwd, adds /srv/app.txt. /bin and /etc have no entries of their
    // own, so they keep the times the changes gave them and show as changed, as docker diff shows a container's /etc;
    // the diff carries those times, which is what makes its replay on another container show the same changes.
    private static MemoryStream SecondLayer() => BuildTar(
        new PaxTarEntry(TarEntryType.RegularFile, "bin/.wh.ls") { ModificationTime = Mtime },
        new PaxTarEntry(TarEntryType.RegularFile, "etc/.wh.group") { ModificationTime = Mtime },
        TextFile("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/srv:/bin/sh\n"),
        Dir("srv/"),
        TextFile("srv/app.txt", "the app\n"));

    private static PaxTarEntry Dir(string name) => new(TarEntryType.Directory, name) { Mode = (UnixFileMode)0x1ED, ModificationTime = Mtime };

    private static PaxTarEntry TextFile(string name, string content) => new(TarEntryType.RegularFile, name)
    {
        Mode = (UnixFileMode)0x1A4,
        ModificationTime = Mtime,
        DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)),
    };

    private static MemoryStream BuildTar(params TarEntry[] entries)
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

    // Entry names (without a trailing "/") and types.
    private static Dictionary<string, TarEntryType> ReadTar(string path)
    {
        using FileStream file = File.OpenRead(path);
        using var reader = new TarReader(file);
        var entries = new Dictionary<string, TarEntryType>(StringComparer.Ordinal);
        while (reader.GetNextEntry() is TarEntry entry)
        {
            entries.Add(entry.Name.TrimEnd('/'), entry.EntryType);
        }

        return entries;
    }

    private static string ReadTarText(string path, string name)
    {
        using FileStream file = File.OpenRead(path);
        using var reader = new TarReader(file);
        while (reader.GetNextEntry() is TarEntry entry)
        {
            if (entry.Name == name)
            {
                using var text = new StreamReader(entry.DataStream!);
                return text.ReadToEnd();
            }
        }

        throw new InvalidOperationException($"{name} is not in {path}.");
    }
}
