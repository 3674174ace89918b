using BlockDriver.Interop;
namespace BlockDriver.Fuse.Tests;

public sealed class MountInfoEntryTests
{
    [Fact]
    public void A_fuse_line_parses_with_its_connection_and_unescaped_paths()
    {
        const string line = @"42 27 0:39 / /tmp/with\040space/mnt rw,nosuid,nodev,relatime shared:1 master:2 - fuse.blockdriver a\134b rw,user_id=0";

        Assert.True(MountInfoEntry.TryParse(line, out MountInfoEntry? entry));

        Assert.Equal(42, entry.MountId);
        Assert.Equal("/tmp/with space/mnt", entry.MountPoint);
        Assert.Equal("fuse.blockdriver", entry.FileSystemType);
        Assert.Equal(@"a\b", entry.Source);
        Assert.True(entry.IsFuse);
        Assert.Equal(39, entry.ConnectionId);
    }

    [Theory]
    [InlineData("ext4", false)]
    [InlineData("fuse", true)]
    [InlineData("fuse.sshfs", true)]
    [InlineData("fuseblk", false)]
    [InlineData("fusectl", false)]
    public void Only_fuse_and_fuse_subtypes_count_as_fuse(string type, bool isFuse)
    {
        Assert.True(MountInfoEntry.TryParse($"1 0 8:1 / /x rw - {type} src rw", out MountInfoEntry? entry));
        Assert.Equal(isFuse, entry.IsFuse);
    }

    [Theory]
    [InlineData("")]
    [InlineData("1 0 8:1 / /x rw")]
    [InlineData("x 0 8:1 / /x rw - ext4 src rw")]
    [InlineData("1 0 8-1 / /x rw - ext4 src rw")]
    public void Malformed_lines_are_rejected(string line)
    {
        Assert.False(MountInfoEntry.TryParse(line, out _));
    }

    [Fact]
    public void The_mount_table_of_this_process_parses()
    {
        IReadOnlyList<MountInfoEntry> entries = MountInfoEntry.ReadAll();

        Assert.Contains(entries, e => e.MountPoint == "/");
        Assert.Equal(File.ReadAllLines("/proc/self/mountinfo").Length, entries.Count);
    }
}
