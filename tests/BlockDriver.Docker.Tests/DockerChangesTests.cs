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
}
