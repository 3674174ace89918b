using System.Formats.Tar;
using static BlockDriver.Mount.Tests.Tar.TarTestTree;

namespace BlockDriver.Mount.Tests;

/// <summary>Two real image layer tars: a busybox root file system built from Debian's busybox-static
/// (/bin/busybox, a static binary) and a second layer over it with whiteouts.</summary>
internal static class BusyboxLayerTars
{
    public const string Busybox = "/bin/busybox";

    /// <summary>Applets linked in /bin; the second layer deletes ls and cat.</summary>
    public static readonly string[] Applets = ["sh", "ls", "cat", "echo", "mkdir", "rm"];

    /// <summary>/bin/busybox as /bin/busybox, applet symlinks, /etc with passwd and group, /tmp, /root.</summary>
    public static MemoryStream Rootfs()
    {
        var entries = new List<TarEntry>
        {
            Dir("bin/"),
            new PaxTarEntry(TarEntryType.RegularFile, "bin/busybox")
            {
                Mode = (UnixFileMode)0x1ED,
                ModificationTime = Mtime,
                DataStream = new MemoryStream(System.IO.File.ReadAllBytes(Busybox)),
            },
        };
        entries.AddRange(Applets.Select(a => Link(TarEntryType.SymbolicLink, "bin/" + a, "busybox")));
        entries.Add(Dir("etc/"));
        entries.Add(File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"));
        entries.Add(File("etc/group", "root:x:0:\n"));
        entries.Add(File("etc/motd", "layer one\n"));
        entries.Add(Dir("tmp/", (UnixFileMode)0x3FF));
        entries.Add(Dir("root/", (UnixFileMode)0x1C0));
        return BuildTar([.. entries]);
    }

    /// <summary>Deletes /bin/ls and /bin/cat (whiteouts), makes /etc opaque (hiding passwd, group and motd) with a new
    /// /etc/hostname, and adds /srv/app.txt.</summary>
    public static MemoryStream SecondLayer() => BuildTar(
        Dir("bin/"),
        Whiteout("bin/.wh.ls"),
        Whiteout("bin/.wh.cat"),
        Dir("etc/"),
        Whiteout("etc/.wh..wh..opq"),
        File("etc/hostname", "layer-two\n"),
        Dir("srv/"),
        File("srv/app.txt", "the app\n"));
}
