using System.Formats.Tar;
using BlockDriver.Abstractions;
using BlockDriver.Mount.Tar;
using BlockDriver.Testing;
using static BlockDriver.Mount.Tests.Tar.TarTestTree;

namespace BlockDriver.Mount.Tests.Tar;

public sealed class LayerTarApplierTests : IDisposable
{
    private readonly TempDirectory _temp = new("tar");

    private string Root => _temp.GetFilePath("root");

    private string Outside => _temp.GetFilePath("outside");

    public LayerTarApplierTests()
    {
        Directory.CreateDirectory(Root);
        Directory.CreateDirectory(Outside);
        System.IO.File.WriteAllText(Path.Combine(Outside, "secret"), "keep");
    }

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Files_directories_links_and_special_files_keep_their_metadata()
    {
        long written = await LayerTarApplier.ApplyAsync(BuildTar(
            Dir("etc/"),
            File("etc/passwd", "root:x:0:0\n", uid: 1000, gid: 1001, mode: (UnixFileMode)0xDED /* 06755 */,
                attributes: [new("SCHILY.xattr.user.note", "hello")]),
            Link(TarEntryType.SymbolicLink, "etc/link", "/etc/passwd"),
            Link(TarEntryType.HardLink, "etc/hard", "etc/passwd"),
            new PaxTarEntry(TarEntryType.Fifo, "pipe") { Mode = (UnixFileMode)0x1A4, ModificationTime = Mtime },
            new PaxTarEntry(TarEntryType.CharacterDevice, "null") { Mode = (UnixFileMode)0x1B6, DeviceMajor = 1, DeviceMinor = 3, ModificationTime = Mtime }),
            Root);

        Assert.Equal(11, written);
        string passwd = Path.Combine(Root, "etc", "passwd");
        Assert.Equal("root:x:0:0\n", System.IO.File.ReadAllText(passwd));
        var info = new FileInfo(passwd);
        Assert.Equal((UnixFileMode)0xDED, info.UnixFileMode);
        Assert.Equal(Mtime, new DateTimeOffset(info.LastWriteTimeUtc));
        Assert.Equal("/etc/passwd", new FileInfo(Path.Combine(Root, "etc", "link")).LinkTarget);
        ProcessResult stat = await ChildProcess.RunAsync("stat", ["-c", "%u %g %h %F %t,%T", passwd, Path.Combine(Root, "pipe"), Path.Combine(Root, "null")], Root);
        Assert.Equal(["1000 1001 2 regular file 0,0", "0 0 1 fifo 0,0", "0 0 1 character special file 1,3"], stat.Stdout.Trim().Split('\n'));
        ProcessResult xattr = await ChildProcess.RunAsync(ChildProcess.Locate("python3")!, ["-c", "import os,sys;sys.stdout.write(os.getxattr(sys.argv[1],'user.note').decode())", passwd], Root);
        Assert.Equal("hello", xattr.Stdout);
        Assert.Equal(Mtime, new DateTimeOffset(Directory.GetLastWriteTimeUtc(Path.Combine(Root, "etc"))));
    }

    [Fact]
    public async Task Whiteouts_delete_and_opaque_markers_hide_lower_content_but_keep_this_layers()
    {
        await LayerTarApplier.ApplyAsync(BuildTar(Dir("a/"), File("a/old", "1"), Dir("a/sub/"), File("a/sub/x", "2"), Dir("b/"), File("b/keep", "3"), File("top", "4")), Root);

        await LayerTarApplier.ApplyAsync(BuildTar(
            Whiteout("top.wh.ignored-not-a-whiteout"),
            Whiteout(".wh.top"),
            Whiteout("a/.wh.sub"),
            File("b/new-before-marker", "5"),
            Whiteout("b/.wh..wh..opq"),
            File("b/new-after-marker", "6")), Root);

        Assert.Equal(["/a", "/a/old", "/b", "/b/new-after-marker", "/b/new-before-marker", "/top.wh.ignored-not-a-whiteout"], Paths(Root));
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/../../escape")]
    public async Task A_name_climbing_out_of_the_root_is_refused(string name)
    {
        BlockDriverException e = await Assert.ThrowsAsync<BlockDriverException>(() => LayerTarApplier.ApplyAsync(BuildTar(File(name, "x")), Root));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.False(System.IO.File.Exists(_temp.GetFilePath("escape")));
    }

    [Fact]
    public async Task Absolute_names_land_inside_the_root()
    {
        await LayerTarApplier.ApplyAsync(BuildTar(File("/abs", "x"), File("./dot", "y")), Root);
        Assert.Equal(["/abs", "/dot"], Paths(Root));
    }

    [Fact]
    public async Task A_symlink_pointing_out_cannot_be_written_through()
    {
        Exception? failure = await Record.ExceptionAsync(() => LayerTarApplier.ApplyAsync(BuildTar(
            Link(TarEntryType.SymbolicLink, "evil", Outside),
            File("evil/secret", "pwned"),
            Link(TarEntryType.SymbolicLink, "evil2", "../../../../" + Path.GetFileName(Outside)),
            File("evil2/new", "pwned")), Root));

        Assert.Equal("keep", System.IO.File.ReadAllText(Path.Combine(Outside, "secret")));
        Assert.Equal(["/secret"], Paths(Outside));
        _ = failure; // refusing (an error) and neutralising (written inside the root) are both safe outcomes
    }

    [Fact]
    public async Task A_hard_link_to_a_file_outside_is_refused_and_one_to_a_symlink_links_the_link()
    {
        await Assert.ThrowsAsync<BlockDriverException>(() => LayerTarApplier.ApplyAsync(BuildTar(Link(TarEntryType.HardLink, "h", "../outside/secret")), Root));
        await LayerTarApplier.ApplyAsync(BuildTar(
            Link(TarEntryType.SymbolicLink, "s", Path.Combine(Outside, "secret")),
            Link(TarEntryType.HardLink, "h", "s")), Root);
        System.IO.File.WriteAllText(Path.Combine(Root, "h2"), "x");

        Assert.Equal(Path.Combine(Outside, "secret"), new FileInfo(Path.Combine(Root, "h")).LinkTarget);
        Assert.Equal("keep", System.IO.File.ReadAllText(Path.Combine(Outside, "secret")));
    }

    [Fact]
    public async Task A_file_replacing_a_symlink_replaces_the_link_not_its_target()
    {
        await LayerTarApplier.ApplyAsync(BuildTar(Link(TarEntryType.SymbolicLink, "x", Path.Combine(Outside, "secret")), File("x", "mine")), Root);
        Assert.Equal("keep", System.IO.File.ReadAllText(Path.Combine(Outside, "secret")));
        Assert.Equal("mine", System.IO.File.ReadAllText(Path.Combine(Root, "x")));
        Assert.Null(new FileInfo(Path.Combine(Root, "x")).LinkTarget);
    }

    [Fact]
    public async Task A_whiteout_through_a_symlink_deletes_nothing_outside()
    {
        await LayerTarApplier.ApplyAsync(BuildTar(Link(TarEntryType.SymbolicLink, "d", Outside)), Root);
        Exception? failure = await Record.ExceptionAsync(() => LayerTarApplier.ApplyAsync(BuildTar(Whiteout("d/.wh.secret"), Whiteout("d/.wh..wh..opq")), Root));
        Assert.Equal("keep", System.IO.File.ReadAllText(Path.Combine(Outside, "secret")));
        _ = failure;
    }

    [Fact]
    public async Task A_truncated_tar_is_reported_as_malformed()
    {
        MemoryStream tar = BuildTar(File("big", new string('x', 10000)));
        var truncated = new MemoryStream(tar.ToArray()[..2048]);
        await Assert.ThrowsAnyAsync<Exception>(() => LayerTarApplier.ApplyAsync(truncated, Root));
    }

    [Fact]
    public async Task A_capability_the_kernel_refuses_is_invalid_argument_and_a_symlink_entry_never_changes_its_target()
    {
        MemoryStream bad = RawTar.Build(RawTar.File(RawTar.B("ping"), RawTar.B("elf"), 0x1ED, 0, 0, 0, ("security.capability", [0x01, 0x80, 0xff])));
        BlockDriverException e = await Assert.ThrowsAsync<BlockDriverException>(() => LayerTarApplier.ApplyAsync(bad, Root));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains("setxattr security.capability (3 bytes)", e.Message, StringComparison.Ordinal);

        // A symbolic link entry's owner, mode and times are the link's own: the file it points to keeps its own.
        string secret = Path.Combine(Outside, "secret");
        System.IO.File.SetUnixFileMode(secret, (UnixFileMode)0x180);
        DateTime before = System.IO.File.GetLastWriteTimeUtc(secret);
        var link = RawTar.Link(BlockDriver.Mount.Tar.TarTypeFlag.Symlink, RawTar.B("l"), RawTar.B(secret));
        link.Header.Uid = 1234;
        await LayerTarApplier.ApplyAsync(RawTar.Build(link), Root);

        Assert.Equal((UnixFileMode)0x180, System.IO.File.GetUnixFileMode(secret));
        Assert.Equal(before, System.IO.File.GetLastWriteTimeUtc(secret));
        ProcessResult owners = await ChildProcess.RunAsync("stat", ["-c", "%u", secret, Path.Combine(Root, "l")], Root);
        Assert.Equal(["0", "1234"], owners.Stdout.Trim().Split('\n'));
    }
}
