using System.Formats.Tar;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Daemon.Tests;

/// <summary><c>layer create</c>, <c>apply</c>, <c>changes</c> and <c>diff</c> while a daemon runs: the daemon owns the
/// store's FUSE mount, so the CLI must have the daemon do them (this process could not mount anything).</summary>
[Collection(DaemonTestCollection.Name)]
public sealed class DaemonLayerContentTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Create_apply_changes_and_diff_go_through_the_running_daemon()
    {
        await using DaemonTestStore test = await DaemonTestStore.CreateAsync(output);
        DaemonProcess daemon = test.StartDaemon(null, "--Logging:LogLevel:BlockDriver.Daemon.AdminApi=Debug");

        // Parentless: a child of the base file system layer of that size, which the daemon makes.
        ProcessResult create = await test.CliAsync("layer", "create", "--id", "img", "--size", "128M");
        Assert.Equal(0, create.ExitCode);
        Assert.Contains("POST /v1/base-filesystem -> 200", daemon.AllOutput, StringComparison.Ordinal);

        string tar = test.Dir("layer.tar");
        await WriteTarAsync(tar, [
            Directory("etc/"),
            File("etc/motd", "hello from the tar\n"),
            File("etc/gone", "deleted by the next tar\n"),
        ]);
        Assert.Equal(0, (await test.CliAsync("layer", "apply", "img", tar)).ExitCode);
        string whiteout = test.Dir("whiteout.tar");
        await WriteTarAsync(whiteout, [Directory("etc/"), File("etc/.wh.gone", ""), File("etc/new", "new\n")]);
        Assert.Equal(0, (await test.CliAsync("layer", "apply", "img", whiteout)).ExitCode);
        Assert.Contains("POST /v1/layers/img/apply -> 200", daemon.AllOutput, StringComparison.Ordinal);

        // The temporary mounts of the operations are gone and were never recorded as the daemon's mounts.
        ProcessResult ps = await test.CliAsync("ps", "--json");
        Assert.Empty(JsonSerializer.Deserialize(ps.Stdout, AdminJsonContext.Default.ListMountJson)!);

        ProcessResult changes = await test.CliAsync("layer", "changes", "img");
        Assert.Equal(0, changes.ExitCode);
        Assert.Equal(["A /etc", "A /etc/motd", "A /etc/new"], Lines(changes.Stdout));

        string diff = test.Dir("diff.tar");
        Assert.Equal(0, (await test.CliAsync("layer", "diff", "img", "-o", diff)).ExitCode);
        Dictionary<string, string> entries = await ReadTarAsync(diff);
        Assert.Equal("hello from the tar\n", entries["etc/motd"]);
        Assert.Equal("new\n", entries["etc/new"]);
        Assert.DoesNotContain("etc/gone", entries.Keys);

        // Names that are not UTF-8 keep their bytes through the admin API: a Latin-1 "café" and a name whose bytes
        // are the UTF-8 of U+FFFD decode to the same text, and stay two paths, the first with its exact bytes.
        string bytesTar = test.Dir("bytes.tar");
        ProcessResult made = await ChildProcess.RunAsync(ChildProcess.Locate("python3")!, ["-c",
            "import io, sys, tarfile\nwith tarfile.open(sys.argv[1], 'w', format=tarfile.GNU_FORMAT, encoding='utf-8', errors='surrogateescape') as t:\n" +
            "    for n in ['etc/caf\\udce9', 'etc/caf\\ufffd']:\n        t.addfile(tarfile.TarInfo(n), io.BytesIO(b''))", bytesTar], test.Dir(""));
        Assert.True(made.ExitCode == 0, made.Stderr);
        Assert.Equal(0, (await test.CliAsync("layer", "apply", "img", bytesTar)).ExitCode);
        ProcessResult byteChanges = await test.CliAsync("layer", "changes", "img", "--json");
        Assert.Equal(0, byteChanges.ExitCode);
        string[] cafes = [.. JsonDocument.Parse(byteChanges.Stdout).RootElement.EnumerateArray()
            .Where(c => c.GetProperty("path").GetString()!.StartsWith("/etc/caf", StringComparison.Ordinal))
            .Select(c => c.GetProperty("path").GetString() + " " + (c.TryGetProperty("pathBase64", out JsonElement raw) ? raw.GetString() : "-"))];
        Assert.Equal(["/etc/caf\ufffd L2V0Yy9jYWbp", "/etc/caf\ufffd -"], cafes);

        // Bad input: an unknown layer, a hostile tar. Each fails clearly and the daemon stays up.
        ProcessResult unknown = await test.CliAsync("layer", "changes", "no-such-layer");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("no-such-layer", unknown.Stderr, StringComparison.Ordinal);
        string hostile = test.Dir("hostile.tar");
        await WriteTarAsync(hostile, [File("../escape", "out\n")]);
        ProcessResult refused = await test.CliAsync("layer", "apply", "img", hostile);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("layer tar:", refused.Stderr, StringComparison.Ordinal);
        Assert.False(System.IO.File.Exists(Path.Combine(test.Dir(""), "escape")));
        Assert.False(System.IO.File.Exists(Path.Combine(test.Root, "mnt", "escape")));
        ProcessResult sealedApply = await test.CliAsync("layer", "seal", "img");
        Assert.Equal(0, sealedApply.ExitCode);
        ProcessResult readOnly = await test.CliAsync("layer", "apply", "img", tar);
        Assert.Equal(1, readOnly.ExitCode);
        Assert.Contains("sealed", readOnly.Stderr, StringComparison.Ordinal);

        Assert.DoesNotContain(test.Leftovers(), l => !l.Contains("/run/fuse", StringComparison.Ordinal));
        Assert.Equal(0, await daemon.TerminateAsync());
        Assert.Empty(test.Leftovers());
        Assert.Empty(System.IO.Directory.EnumerateDirectories(Path.Combine(test.Root, "mnt"), ".tmp-*"));
    }

    [Fact]
    public async Task Apply_refuses_a_layer_mounted_for_someone_else_while_a_process_there_races_it()
    {
        await using DaemonTestStore test = await DaemonTestStore.CreateAsync(output);
        DaemonProcess daemon = test.StartDaemon();
        string mount = test.Dir("running");
        Assert.Equal(0, (await test.CliAsync("mount", "c1", mount)).ExitCode);

        // A process on the mount (as a container would be on its root file system) keeps swapping the file the tar
        // writes for a symbolic link to a host file that is root's alone.
        string secret = test.Dir("secret");
        await System.IO.File.WriteAllTextAsync(secret, "root only\n");
        System.IO.File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        string target = Path.Combine(mount, "victim");
        using var racer = System.Diagnostics.Process.Start("sh", ["-c", $"while :; do ln -sfn {secret} {target}.l; mv -fT {target}.l {target}; done"])!;
        try
        {
            string tar = test.Dir("modes.tar");
            var open = new PaxTarEntry(TarEntryType.RegularFile, "victim") { Mode = (UnixFileMode)0x1FF, DataStream = new MemoryStream(Encoding.UTF8.GetBytes("from the tar\n")) };
            await WriteTarAsync(tar, [open]);
            for (int attempt = 0; attempt < 5; attempt++)
            {
                ProcessResult refused = await test.CliAsync("layer", "apply", "c1", tar);
                Assert.Equal(1, refused.ExitCode);
                Assert.Contains($"layer c1 is mounted at {mount}", refused.Stderr, StringComparison.Ordinal);
                Assert.Contains("a tar is applied only to a layer nobody has mounted", refused.Stderr, StringComparison.Ordinal);
            }
        }
        finally
        {
            racer.Kill();
            await racer.WaitForExitAsync();
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, System.IO.File.GetUnixFileMode(secret));
        Assert.Equal("root only\n", await System.IO.File.ReadAllTextAsync(secret));

        // Unmounted, the same tar applies.
        System.IO.File.Delete(target);
        Assert.Equal(0, (await test.CliAsync("umount", mount)).ExitCode);
        Assert.Equal(0, (await test.CliAsync("layer", "apply", "c1", test.Dir("modes.tar"))).ExitCode);
        Assert.Equal(0, await daemon.TerminateAsync());
        Assert.Empty(test.Leftovers());
    }

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static PaxTarEntry Directory(string name) => new(TarEntryType.Directory, name) { Mode = (UnixFileMode)0x1ED };

    private static PaxTarEntry File(string name, string content) =>
        new(TarEntryType.RegularFile, name) { Mode = (UnixFileMode)0x1A4, DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) };

    private static async Task WriteTarAsync(string path, IEnumerable<PaxTarEntry> entries)
    {
        await using FileStream stream = System.IO.File.Create(path);
        await using var writer = new TarWriter(stream, TarEntryFormat.Pax);
        foreach (PaxTarEntry entry in entries)
        {
            await writer.WriteEntryAsync(entry);
        }
    }

    private static async Task<Dictionary<string, string>> ReadTarAsync(string path)
    {
        var entries = new Dictionary<string, string>();
        await using FileStream stream = System.IO.File.OpenRead(path);
        await using var reader = new TarReader(stream);
        while (await reader.GetNextEntryAsync() is TarEntry entry)
        {
            entries[entry.Name.TrimEnd('/')] = entry.DataStream is null ? "" : await new StreamReader(entry.DataStream).ReadToEndAsync();
        }

        return entries;
    }
}
