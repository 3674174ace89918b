using BlockDriver.Abstractions;
using BlockDriver.Mount.Tar;
using BlockDriver.Testing;
using static BlockDriver.Mount.Tests.Tar.RawTar;

namespace BlockDriver.Mount.Tests.Tar;

/// <summary>Walks are iterative and bounded: 30,000 nested directories give a clear InvalidArgument from changes,
/// size, diff and removal (they overflowed the stack and killed the daemon), 2,000 are walked; and a size is never
/// taken through a link.</summary>
/// <remarks>The trees are made on tmpfs (/dev/shm): removing 30,000 levels from the host's ext4 takes half a
/// minute of journal I/O, from tmpfs under a second; the walks do not depend on the file system.</remarks>
public sealed class DeepTreeTests : IDisposable
{
    private readonly string _scratch = Directory.CreateDirectory(Path.Combine("/dev/shm", $"blockdriver-deep-{Guid.NewGuid():N}")).FullName;

    public void Dispose() => TarCases.RemoveTree(_scratch);

    private async Task<string> NestAsync(int levels)
    {
        string root = Path.Combine(_scratch, "root");
        Directory.CreateDirectory(root);
        ProcessResult made = await ChildProcess.RunAsync(ChildProcess.Locate("python3")!,
            ["-c", "import os,sys\nos.chdir(sys.argv[1])\nfor i in range(int(sys.argv[2])):\n    os.mkdir('d'); os.chdir('d')\nopen('leaf','w').write('x')", root, levels.ToString(System.Globalization.CultureInfo.InvariantCulture)], root);
        Assert.Equal(0, made.ExitCode);
        return root;
    }

    [Fact]
    public async Task Thirty_thousand_nested_directories_are_refused_by_every_walk()
    {
        string root = await NestAsync(30_000);

        AssertTooDeep(Assert.Throws<BlockDriverException>(() => LayerChanges.Compute(null, root)));
        AssertTooDeep(Assert.Throws<BlockDriverException>(() => LayerChanges.Compute(root, root)));
        AssertTooDeep(Assert.Throws<BlockDriverException>(() => LayerChanges.Size(root, [new LayerChange(ChangeKind.Added, "/d")])));
        AssertTooDeep(Assert.Throws<BlockDriverException>(() => LayerChanges.DiffSize(null, root)));
        AssertTooDeep(await Assert.ThrowsAsync<BlockDriverException>(() => LayerTarWriter.WriteDiffAsync(null, root, Stream.Null)));
        AssertTooDeep(await Assert.ThrowsAsync<BlockDriverException>(() => LayerTarApplier.ApplyAsync(Build(File(B(".wh.d"), [])), root)));
        Assert.True(Directory.Exists(Path.Combine(root, "d")));

        // Walks that list paths stop at PATH_MAX (2,047 levels of one-letter names); removal at 4,096 levels.
        static void AssertTooDeep(BlockDriverException e)
        {
            Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
            Assert.Matches("more than 4096 directory levels deep|a path longer than 4095 bytes", e.Message);
        }
    }

    [Fact]
    public async Task Two_thousand_nested_directories_are_walked_diffed_and_removed()
    {
        string root = await NestAsync(2000);

        IReadOnlyList<LayerChange> changes = LayerChanges.Compute(null, root);
        Assert.Equal(2001, changes.Count);
        Assert.EndsWith("/d/d/leaf", changes[^1].Path, StringComparison.Ordinal);
        Assert.Equal(1, LayerChanges.DiffSize(null, root));
        Assert.Equal(1, LayerChanges.Size(root, changes));
        using var diff = new MemoryStream();
        await LayerTarWriter.WriteDiffAsync(null, root, diff);
        diff.Position = 0;
        var reader = new LayerTarReader(diff);
        int entries = 0;
        while (await reader.NextAsync() is { } header)
        {
            entries++;
            Assert.Equal(changes[entries - 1].RawPath[1..], header.TypeFlag == TarTypeFlag.Directory ? header.Name[..^1] : header.Name);
        }

        Assert.Equal(2001, entries);

        await LayerTarApplier.ApplyAsync(Build(File(B(".wh.d"), [])), root);
        Assert.Empty(Directory.EnumerateFileSystemEntries(root));
    }

    [Fact]
    public void A_tar_name_deeper_than_the_limit_is_refused()
    {
        BlockDriverException e = Assert.Throws<BlockDriverException>(() => TarPaths.Clean(B(string.Join('/', Enumerable.Repeat("d", 5000)))));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
    }

    [Fact]
    public async Task DiffSize_counts_as_overlay2_an_inode_once_and_a_symlink_by_its_target()
    {
        string root = Path.Combine(_scratch, "sized");
        Directory.CreateDirectory(root);
        await LayerTarApplier.ApplyAsync(Build(
            File("a", new string('x', 100)),
            Link(TarTypeFlag.HardLink, B("b"), B("a")),
            Link(TarTypeFlag.Symlink, B("s"), B("xyz")),
            File("d/e", "12345")), root);

        // 100 (a and b, one inode) + 3 (s) + 5 (d/e); the directory d counts nothing.
        Assert.Equal(108, LayerChanges.DiffSize(null, root));
    }

    [Fact]
    public async Task Size_never_stats_through_a_link_out_of_the_layer()
    {
        string root = Path.Combine(_scratch, "root");
        string outside = Path.Combine(_scratch, "outside");
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(outside);
        await System.IO.File.WriteAllBytesAsync(Path.Combine(outside, "big"), new byte[100_000]);
        await LayerTarApplier.ApplyAsync(Build(Link(TarTypeFlag.Symlink, B("dir"), B(outside)), Link(TarTypeFlag.Symlink, B("big"), B(Path.Combine(outside, "big")))), root);

        // A change list naming a path through the link (as a racing container could make appear) counts nothing.
        Assert.Equal(0, LayerChanges.Size(root, [new LayerChange(ChangeKind.Added, "/dir/big"), new LayerChange(ChangeKind.Added, "/big")]));
        // DiffSize counts the links themselves, by their targets' lengths (as overlay2 does), never what they point at.
        Assert.Equal(B(outside).Length + B(Path.Combine(outside, "big")).Length, LayerChanges.DiffSize(null, root));
    }
}
