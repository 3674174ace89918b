using BlockDriver.Interop;
using BlockDriver.Mount.Tar;
using static BlockDriver.Mount.Tests.Tar.RawTar;

namespace BlockDriver.Mount.Tests.Tar;

/// <summary>The tars of the round-trip tests, by case name.</summary>
internal static class TarCases
{
    private const long GiB = 1L << 30;

    /// <summary>security.capability of <c>setcap cap_net_raw+ep</c>: VFS_CAP_REVISION_2 with the effective flag
    /// (le32 0x02000001), permitted 1 &lt;&lt; 13, inheritable 0, and the upper 32 bits of both.</summary>
    public static readonly byte[] NetRawCapability = [0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    public static readonly Dictionary<string, Entry[]> All = new(StringComparer.Ordinal)
    {
        ["binary xattrs"] =
        [
            Dir("bin"),
            File(B("bin/ping"), B("elf"), 0x1ED, 0, 0, 0, ("security.capability", NetRawCapability), ("user.bin", [0x01, 0x80, 0xff, 0x00, 0x41])),
            File(B("bin/trusted"), B("t"), 0x1A4, 0, 0, 0, ("trusted.overlay.x", [0x00, 0xff, 0xfe]), ("user.empty", [])),
        ],
        ["names that are not UTF-8"] =
        [
            Dir([0xe9, (byte)'t', 0xe9]),
            File([0xe9, (byte)'t', 0xe9, (byte)'/', (byte)'c', (byte)'a', (byte)'f', 0xe9], B("latin-1")),
            File([0xe9, (byte)'t', 0xe9, (byte)'/', (byte)'c', (byte)'a', (byte)'f', 0xc3, 0xa9], B("utf-8")),
            File([0xe9, (byte)'t', 0xe9, (byte)'/', (byte)'x', 0xff, 0xfe, (byte)'y'], B("bytes")),
            Link(TarTypeFlag.Symlink, [0xe9, (byte)'t', 0xe9, (byte)'/', (byte)'l'], [(byte)'c', (byte)'a', (byte)'f', 0xe9]),
            Link(TarTypeFlag.HardLink, [0xe9, (byte)'t', 0xe9, (byte)'/', (byte)'z', 0x80], [0xe9, (byte)'t', 0xe9, (byte)'/', (byte)'c', (byte)'a', (byte)'f', 0xe9]),
        ],
        ["hard links across directories"] =
        [
            Dir("a"),
            File("a/file", "shared content"),
            Dir("b"),
            Link(TarTypeFlag.HardLink, B("b/link"), B("a/file")),
            Dir("c"),
            Dir("c/deeper"),
            Link(TarTypeFlag.HardLink, B("c/deeper/link2"), B("a/file")),
        ],
        ["devices and FIFOs"] =
        [
            Dir("dev"),
            Device(TarTypeFlag.CharDevice, "dev/null", 1, 3),
            Device(TarTypeFlag.BlockDevice, "dev/loop0", 7, 0, 0x1B0),
            Device(TarTypeFlag.CharDevice, "dev/big", 4095, 1048575),
            Device(TarTypeFlag.Fifo, "dev/fifo", 0, 0, 0x180),
        ],
        ["long names and link targets"] =
        [
            Dir(new string('d', 120)),
            File($"{new string('d', 120)}/{new string('f', 150)}", "over 100 bytes"),
            Dir($"{new string('d', 120)}/{new string('e', 200)}"),
            File($"{new string('d', 120)}/{new string('e', 200)}/{new string('g', 255)}", "over 255 bytes"),
            Link(TarTypeFlag.Symlink, B("s1"), B(new string('t', 200))),
            Link(TarTypeFlag.Symlink, B("s2"), B(string.Join('/', Enumerable.Repeat(new string('u', 100), 30)))),
            Link(TarTypeFlag.HardLink, B(new string('h', 180)), B($"{new string('d', 120)}/{new string('e', 200)}/{new string('g', 255)}")),
        ],
        ["sparse files"] =
        [
            Sparse("holes", 1 << 20, (0, Pattern(4096, 1)), (512 * 1024, Pattern(8192, 2))),
            Sparse("all-hole", 3 << 20),
            Sparse("huge", (9 * GiB) + 12345, (4096, Pattern(4096, 3)), ((9 * GiB) - 4096, Pattern(4096, 4))),
            File(B("plain"), Pattern(10000, 5)),
        ],
        ["owners modes and times"] =
        [
            Dir("srv", 0x3FF), // 01777
            Dir("srv/private", 0x1C0),
            File(B("srv/suid"), B("s"), 0xDED, 1000, 1001), // 06755
            File(B("srv/big-ids"), B("i"), 0x1A4, 3_000_000, 2_097_152), // ids past 7 octal digits: pax uid/gid
            File(B("srv/nanos"), B("n"), 0x1A4, 0, 0, 123_456_789),
            Link(TarTypeFlag.Symlink, B("srv/link"), B("suid")),
            File(B("srv/empty"), [], 0x100),
        ],
    };

    /// <summary>Removes a tree whatever its names (.NET's recursive delete cannot name a file that is not UTF-8) or
    /// depth: GNU rm, with a deadline.</summary>
    public static void RemoveTree(string path)
    {
        using var rm = System.Diagnostics.Process.Start("rm", ["-rf", "--one-file-system", path]);
        if (!rm.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            rm.Kill();
            throw new TimeoutException($"rm -rf {path} did not finish in 120 s.");
        }

        Assert.Equal(0, rm.ExitCode);
    }

    /// <summary>Deterministic non-zero bytes.</summary>
    public static byte[] Pattern(int length, int seed)
    {
        byte[] bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] |= 1;
        }

        return bytes;
    }

    /// <summary>Every sparse entry of <paramref name="entries"/> was written with its holes: fewer blocks than its
    /// size, and SEEK_HOLE finds a hole before the end.</summary>
    public static void AssertHolesKept(string root, IEnumerable<Entry> entries)
    {
        using DirectoryHandle handle = DirectoryHandle.OpenRoot(root);
        foreach (Entry entry in entries.Where(e => e.Header.Sparse is not null))
        {
            (byte[] directory, byte[] name) = ByteNames.Split(TarPaths.Clean(entry.Header.Name));
            using DirectoryHandle parent = DirectoryHandle.Open(handle, directory, create: false)!;
            FileStat stat = FileStat.Require(parent.Fd, name);
            Assert.Equal(entry.Header.RealSize, stat.Size);
            long data = entry.Header.Size;
            Assert.True(stat.Blocks * 512 < stat.Size && stat.Blocks * 512 <= data + (64 * 1024),
                $"{entry.Header.DisplayName}: {stat.Blocks} blocks for {data} bytes of data in {stat.Size}: holes were filled.");
            int fd = FsNative.Openat(parent.Fd, name, FsNative.ORdOnly | FsNative.ONoFollow | FsNative.OCloExec, 0);
            Assert.True(fd >= 0);
            try
            {
                Assert.True(FsNative.Lseek(fd, 0, FsNative.SeekHole) < stat.Size, $"{entry.Header.DisplayName}: SEEK_HOLE finds no hole.");
            }
            finally
            {
                FsNative.Close(fd);
            }
        }
    }
}
