using BlockDriver.Mount.Tar;

namespace BlockDriver.Docker.Tests;

public sealed class DockerChangesTests
{
    [Fact]
    public void Directories_with_changes_inside_are_listed_as_modified_before_them_except_the_root()
    {
        LayerChange[] changes =
        [
            new(ChangeKind.Added, "/app"),
            new(ChangeKind.Added, "/app/data"),
            new(ChangeKind.Modified, "/etc/motd"),
            new(ChangeKind.Deleted, "/usr/share/doc/x"),
            new(ChangeKind.Modified, "/var"),
            new(ChangeKind.Deleted, "/var/cache/y"),
        ];
        Assert.Equal(
            ["A /app", "A /app/data", "C /etc", "C /etc/motd", "C /usr", "C /usr/share", "C /usr/share/doc", "D /usr/share/doc/x", "C /var", "C /var/cache", "D /var/cache/y"],
            DockerChanges.WithParentDirectories(changes).Select(c => c.ToString()));
    }

    [Fact]
    public void No_changes_stay_none_and_top_level_entries_get_no_parent()
    {
        Assert.Empty(DockerChanges.WithParentDirectories([]));
        Assert.Equal(["D /x"], DockerChanges.WithParentDirectories([new(ChangeKind.Deleted, "/x")]).Select(c => c.ToString()));
    }

    [Fact]
    public void Directories_whose_names_decode_alike_stay_two_parents()
    {
        // "d\xe9" (Latin-1) and "d\xef\xbf\xbd" (UTF-8 of U+FFFD) are both "/d\ufffd" as text, but two directories.
        LayerChange[] changes =
        [
            new(ChangeKind.Added, [.. "/d"u8, 0xe9, .. "/x"u8]),
            new(ChangeKind.Added, [.. "/d"u8, 0xef, 0xbf, 0xbd, .. "/y"u8]),
        ];
        IReadOnlyList<LayerChange> listed = DockerChanges.WithParentDirectories(changes);
        Assert.Equal(["C /d\ufffd", "A /d\ufffd/x", "C /d\ufffd", "A /d\ufffd/y"], listed.Select(c => c.ToString()));
        Assert.Equal([.. "/d"u8, 0xe9], listed[0].RawPath);
        Assert.Equal([.. "/d"u8, 0xef, 0xbf, 0xbd], listed[2].RawPath);
    }
}
