using BlockDriver.Mount.Tar;
using BlockDriver.Testing;
using Xunit.Abstractions;
using static BlockDriver.Mount.Tests.Tar.RawTar;

namespace BlockDriver.Mount.Tests.Tar;

/// <summary>Tars made by GNU tar (<c>tar --xattrs -S</c>, GNU and pax formats, pax sparse 0.0, 0.1 and 1.0) of a tree
/// holding what layer tars hold (binary xattrs and a <c>setcap</c> capability, sparse files with many holes, names
/// that are not UTF-8, long names and targets, hard links, devices, a FIFO): read, they hold exactly the entries
/// this project's own diff of that tree holds, and applied they rebuild the tree (no change between the two, holes
/// kept).</summary>
public sealed class GnuTarTests(ITestOutputHelper output) : IDisposable
{
    // Makes the tree with Python (bytes names, xattrs) and setcap; every time whole seconds (GNU format has no more).
    private const string MakeTree = """
        import os, sys
        root = sys.argv[1].encode()
        def p(*parts): return os.path.join(root, *parts)
        os.makedirs(p(b'bin')); os.makedirs(p(b'a', b'deep')); os.makedirs(p(b'\xe9t\xe9')); os.makedirs(p(b'd' * 120, b'e' * 200))
        open(p(b'bin', b'ping'), 'wb').write(b'elf')
        os.setxattr(p(b'bin', b'ping'), 'user.bin', bytes([1, 0x80, 0xff, 0, 0x41]))
        open(p(b'\xe9t\xe9', b'caf\xe9'), 'wb').write(b'latin-1')
        open(p(b'\xe9t\xe9', b'caf\xc3\xa9'), 'wb').write(b'utf-8')
        open(p(b'd' * 120, b'e' * 200, b'g' * 255), 'wb').write(b'long')
        os.symlink(b't' * 300, p(b'longlink'))
        os.symlink(b'caf\xe9', p(b'\xe9t\xe9', b'l'))
        os.link(p(b'bin', b'ping'), p(b'a', b'deep', b'hard'))
        with open(p(b'holes'), 'wb') as f:
            for i in range(10):
                f.seek(i * 1048576); f.write(bytes([i + 1]) * 4096)
            f.truncate(12 * 1048576 + 17)
        with open(p(b'huge'), 'wb') as f:
            f.seek(9 << 30); f.write(b'end of a 9 GiB file')
        os.mkfifo(p(b'fifo'))
        os.mknod(p(b'null'), 0o20666, os.makedev(1, 3))
        os.chown(p(b'bin', b'ping'), 1000, 1001); os.chmod(p(b'bin', b'ping'), 0o4755)
        for dirpath, dirnames, filenames in os.walk(root, topdown=False):
            for n in filenames + dirnames:
                os.utime(os.path.join(dirpath, n), ns=(1714979289 * 10**9, 1714979289 * 10**9), follow_symlinks=False)
        os.utime(root, ns=(1714979289 * 10**9, 1714979289 * 10**9))
        """;

    private readonly TempDirectory _temp = new("gnutar");

    public void Dispose()
    {
        TarCases.RemoveTree(_temp.GetFilePath("src"));
        TarCases.RemoveTree(_temp.GetFilePath("dst"));
        _temp.Dispose();
    }

    private static async Task Run(string program, string[] args, string directory)
    {
        ProcessResult result = await ChildProcess.RunAsync(program, args, directory);
        Assert.True(result.ExitCode == 0, $"{program} {string.Join(' ', args)}: exit {result.ExitCode}: {result.Stderr}");
    }

    [Theory]
    [InlineData("gnu")]
    [InlineData("pax-0.0")]
    [InlineData("pax-0.1")]
    [InlineData("pax-1.0")]
    public async Task Gnu_tar_archives_read_as_the_tree_and_apply_to_it(string format)
    {
        string src = _temp.GetFilePath("src"), dst = _temp.GetFilePath("dst"), tar = _temp.GetFilePath("t.tar");
        Directory.CreateDirectory(src);
        Directory.CreateDirectory(dst);
        await Run(ChildProcess.Locate("python3")!, ["-c", MakeTree, src], src);
        // setcap writes security.capability as libcap encodes it (and after the chown above: chown clears it).
        await Run(ChildProcess.Locate("setcap") ?? "/usr/sbin/setcap", ["cap_net_raw+ep", Path.Combine(src, "bin", "ping")], src);
        await Run("touch", ["-h", "-d", "@1714979289", Path.Combine(src, "bin", "ping"), Path.Combine(src, "bin")], src);

        string[] formatArgs = format == "gnu" ? ["--format=gnu"] : ["--format=posix", $"--sparse-version={format[4..]}"];
        await Run("tar", [.. formatArgs, "--xattrs", "--xattrs-include=*", "-S", "--numeric-owner", "-C", src, "-cf", tar, "."], src);
        output.WriteLine($"{format}: GNU tar wrote {new FileInfo(tar).Length} bytes");

        List<string> theirs;
        await using (FileStream file = System.IO.File.OpenRead(tar))
        {
            theirs = await ReadAsync(file, skip: n => n.Length == 0);
        }

        using var ours = new MemoryStream();
        await LayerTarWriter.WriteDiffAsync(null, src, ours);
        ours.Position = 0;
        List<string> mine = await ReadAsync(ours);
        output.WriteLine(string.Join('\n', theirs));
        Assert.Contains(theirs, l => l.Contains("xattrs=[73656375726974792e6361706162696c697479=0100000200200000", StringComparison.Ordinal)); // security.capability, cap_net_raw
        Assert.Equal(mine, theirs);

        await using (FileStream file = System.IO.File.OpenRead(tar))
        {
            await LayerTarApplier.ApplyAsync(file, dst);
        }

        Assert.Empty(LayerChanges.Compute(src, dst));
        TarCases.AssertHolesKept(dst, [
            new Entry(new TarHeader { Name = B("holes"), Sparse = [], Size = 10 * 4096, RealSize = (12 * 1048576) + 17 }),
            new Entry(new TarHeader { Name = B("huge"), Sparse = [], Size = 19, RealSize = (9L << 30) + 19 })]);
    }
}
