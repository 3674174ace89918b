using System.Formats.Tar;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>The Debian rootfs the end-to-end suites build images from: made by debootstrap (or reused from the test
/// cache) with what the seed Dockerfile needs, and its tar as <c>docker import</c> takes it.</summary>
[Collection(DockerEndToEndCollection.Name)]
public sealed class DebianRootfsTests(ITestOutputHelper output)
{
    [DockerFact]
    public async Task The_rootfs_has_python_make_gcc_and_setcap_and_its_tar_keeps_numeric_owners_and_modes()
    {
        string rootfs = await DebianRootfs.DirectoryAsync(output.WriteLine, CancellationToken.None);
        foreach (string tool in new[] { "usr/bin/python3", "usr/bin/make", "usr/bin/gcc", "usr/sbin/setcap", "usr/bin/dpkg" })
        {
            Assert.True(Path.Exists(Path.Combine(rootfs, tool)), $"{tool} missing in {rootfs}");
        }

        Assert.Contains("bookworm", await File.ReadAllTextAsync(Path.Combine(rootfs, "etc/os-release")), StringComparison.Ordinal);

        string tar = await DebianRootfs.TarAsync(output.WriteLine, CancellationToken.None);
        Assert.Equal(tar, await DebianRootfs.TarAsync(output.WriteLine, CancellationToken.None));
        int entries = 0;
        TarEntry? su = null;
        TarEntry? tmp = null;
        await using (FileStream stream = File.OpenRead(tar))
        {
            using var reader = new TarReader(stream);
            while (reader.GetNextEntry() is { } entry)
            {
                entries++;
                Assert.StartsWith("./", entry.Name, StringComparison.Ordinal);
                if (entry.Name == "./usr/bin/su")
                {
                    su = entry;
                }
                else if (entry.Name == "./tmp/")
                {
                    tmp = entry;
                }
            }
        }

        output.WriteLine($"{tar}: {entries} entries, {new FileInfo(tar).Length / 1_000_000} MB");
        Assert.InRange(entries, 5_000, 50_000);
        Assert.NotNull(su);
        Assert.True(su.Mode.HasFlag(UnixFileMode.SetUser), "setuid bit kept on /usr/bin/su");
        Assert.Equal(0, su.Uid);
        Assert.NotNull(tmp);
        Assert.True(tmp.Mode.HasFlag(UnixFileMode.StickyBit), "sticky bit kept on /tmp");
    }
}
