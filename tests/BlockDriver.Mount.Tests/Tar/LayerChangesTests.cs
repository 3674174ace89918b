using System.Formats.Tar;
using BlockDriver.Mount.Tar;
using BlockDriver.Testing;
using static BlockDriver.Mount.Tests.Tar.TarTestTree;

namespace BlockDriver.Mount.Tests.Tar;

public sealed class LayerChangesTests : IDisposable
{
    private readonly TempDirectory _temp = new("diff");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Changes_list_what_a_layer_added_modified_and_deleted_and_the_diff_tar_reproduces_it()
    {
        string parent = _temp.GetFilePath("parent");
        string layer = _temp.GetFilePath("layer");
        string rebuilt = _temp.GetFilePath("rebuilt");
        foreach (string root in new[] { parent, layer, rebuilt })
        {
            Directory.CreateDirectory(root);
            await LayerTarApplier.ApplyAsync(BuildTar(Dir("etc/"), File("etc/hosts", "127.0.0.1"), File("etc/keep", "k"),
                Dir("var/"), Dir("var/cache/"), File("var/cache/a", "a"), File("bin-sh", "sh"), Link(TarEntryType.HardLink, "bin-ash", "bin-sh")), root);
        }

        System.IO.File.WriteAllText(Path.Combine(layer, "etc", "hosts"), "10.0.0.1");
        System.IO.File.WriteAllText(Path.Combine(layer, "new"), "new file");
        Directory.Delete(Path.Combine(layer, "var", "cache"), recursive: true);
        System.IO.File.SetUnixFileMode(Path.Combine(layer, "etc", "keep"), (UnixFileMode)0x180);

        // Whole-second times, so that the round trip below is exact (tar keeps 100 ns at best).
        foreach (string path in new[] { "etc/hosts", "new", "var" })
        {
            DateTime time = new DateTime(2025, 1, 2, 3, 4, 5, DateTimeKind.Utc);
            System.IO.File.SetLastWriteTimeUtc(Path.Combine(layer, path), time);
        }

        IReadOnlyList<LayerChange> changes = LayerChanges.Compute(parent, layer);

        Assert.Equal(["A /new", "C /etc/hosts", "C /etc/keep", "C /var", "D /var/cache"], changes.Select(c => c.ToString()).Order(StringComparer.Ordinal));
        Assert.Equal(8 + 1 + 8, LayerChanges.Size(layer, changes));

        var tar = new MemoryStream();
        await LayerTarWriter.WriteDiffAsync(parent, layer, tar);
        tar.Position = 0;
        await LayerTarApplier.ApplyAsync(tar, rebuilt);
        // Applying a tar touches the directories it writes into (Docker's too); nothing else may differ.
        Assert.Equal(["C /etc"], LayerChanges.Compute(layer, rebuilt).Select(c => c.ToString()));
        Assert.Equal("10.0.0.1", System.IO.File.ReadAllText(Path.Combine(rebuilt, "etc", "hosts")));
    }

    [Fact]
    public async Task The_diff_of_a_base_layer_is_its_whole_tree_with_hard_links_kept()
    {
        string layer = _temp.GetFilePath("base");
        string copy = _temp.GetFilePath("copy");
        Directory.CreateDirectory(layer);
        Directory.CreateDirectory(copy);
        await LayerTarApplier.ApplyAsync(BuildTar(Dir("bin/"), File("bin/busybox", "elf"), Link(TarEntryType.HardLink, "bin/sh", "bin/busybox"),
            Link(TarEntryType.SymbolicLink, "bin/ls", "busybox")), layer);

        var tar = new MemoryStream();
        IReadOnlyList<LayerChange> changes = await LayerTarWriter.WriteDiffAsync(null, layer, tar);
        tar.Position = 0;
        await LayerTarApplier.ApplyAsync(tar, copy);

        Assert.All(changes, c => Assert.Equal(ChangeKind.Added, c.Kind));
        Assert.Empty(LayerChanges.Compute(layer, copy));
        ProcessResult links = await ChildProcess.RunAsync("stat", ["-c", "%h", Path.Combine(copy, "bin", "sh")], copy);
        Assert.Equal("2", links.Stdout.Trim());
    }
}
