using System.Globalization;
using System.Text;
using BlockDriver.Mount;
using Xunit.Abstractions;

namespace BlockDriver.Daemon.Tests;

/// <summary>What a layer holds cannot crash, stall or swell the daemon: hostile tars through <c>layer apply</c> fail
/// with a clear error and the daemon's peak memory stays within 64 MiB of where it was; a tree a container made
/// 30,000 directories deep fails <c>layer changes</c>/<c>diff</c> clearly (past PATH_MAX) instead of overflowing
/// the daemon's stack; the daemon serves on afterwards.</summary>
[Collection(DaemonTestCollection.Name)]
public sealed class DaemonHostileContentTests(ITestOutputHelper output)
{
    private const long Budget = 64L << 20;

    [Fact]
    public async Task Hostile_tars_and_a_deep_tree_fail_clearly_and_the_daemon_stays_small_and_up()
    {
        await using DaemonTestStore test = await DaemonTestStore.CreateAsync(output);
        DaemonProcess daemon = test.StartDaemon();

        // Warm the paths the hostile inputs take (an apply; a running container's mount; changes and a diff of it),
        // then take the baseline: what is measured is what the hostile inputs add.
        Assert.Equal(0, (await test.CliAsync("layer", "create", "--id", "t", "--parent", BaseFilesystem.LayerId)).ExitCode);
        string good = test.Dir("good.tar");
        await File.WriteAllBytesAsync(good, [.. Header("hello.txt", (byte)'0', 6), .. Pad(Encoding.ASCII.GetBytes("hello\n")), .. new byte[1024]]);
        Assert.Equal(0, (await test.CliAsync("layer", "apply", "t", good)).ExitCode);
        string mount = test.Dir("running");
        Assert.Equal(0, (await test.CliAsync("mount", "c1", mount)).ExitCode);
        Assert.Equal(0, (await test.CliAsync("layer", "changes", "c1")).ExitCode);
        Assert.Equal(0, (await test.CliAsync("layer", "diff", "c1", "-o", test.Dir("warm.tar"))).ExitCode);
        long baseline = PeakRss(daemon.Pid);

        // A pax header claiming 256 MiB (its data a sparse run of zeroes, as cheap to send as a gzip of it is), and a
        // GNU long name of 64 MiB: refused before the header is read.
        foreach ((string name, byte type, long size) in (ValueTuple<string, byte, long>[])[("pax.tar", (byte)'x', 256L << 20), ("longname.tar", (byte)'L', 64L << 20)])
        {
            string path = test.Dir(name);
            await using (FileStream file = File.Create(path))
            {
                await file.WriteAsync(Header("././@Header", type, size));
                file.SetLength(512 + ((size + 511) / 512 * 512) + 1024);
            }

            ProcessResult refused = await test.CliAsync("layer", "apply", "t", path);
            Assert.Equal(1, refused.ExitCode);
            Assert.Contains("1 MiB", refused.Stderr, StringComparison.Ordinal);
        }

        // A name 5,000 directories deep in a tar.
        string deepName = string.Join('/', Enumerable.Repeat("d", 5000)) + "/f";
        string deepTar = test.Dir("deep.tar");
        byte[] pax = PaxRecord("path", deepName);
        await File.WriteAllBytesAsync(deepTar, [.. Header("././@PaxHeader", (byte)'x', pax.Length), .. Pad(pax), .. Header("f", (byte)'0', 0), .. new byte[1024]]);
        ProcessResult deepApply = await test.CliAsync("layer", "apply", "t", deepTar);
        Assert.Equal(1, deepApply.ExitCode);
        Assert.Contains("deep", deepApply.Stderr, StringComparison.Ordinal);

        long growth = PeakRss(daemon.Pid) - baseline;
        output.WriteLine($"daemon peak RSS {baseline / 1048576.0:F1} MiB before the hostile tars, +{growth / 1048576.0:F1} MiB after");
        Assert.True(growth < Budget, $"the daemon's peak RSS grew {growth / 1048576.0:F1} MiB on hostile tars (budget {Budget >> 20} MiB).");

        // A container makes a tree 30,000 directories deep on its mount; what docker diff, ps -s and commit run on it
        // (changes, diff) fails clearly instead of overflowing the daemon's stack.
        ProcessResult made = await ChildProcess.RunAsync("python3", ["-c", "import os\nos.mkdir('deep'); os.chdir('deep')\nfor i in range(30000):\n    os.mkdir('d'); os.chdir('d')"], mount);
        Assert.Equal(0, made.ExitCode);
        ProcessResult changes = await test.CliAsync("layer", "changes", "c1");
        Assert.Equal(1, changes.ExitCode);
        Assert.Contains("the layer's tree has a path longer than 4095 bytes (PATH_MAX)", changes.Stderr, StringComparison.Ordinal);

        // A diff streams as it walks, so the error comes after the first entries: the response is cut off, the
        // client says so, and the daemon's log says why.
        ProcessResult diff = await test.CliAsync("layer", "diff", "c1", "-o", test.Dir("c1.diff.tar"));
        Assert.Equal(1, diff.ExitCode);
        Assert.Contains("stopped sending the diff of layer c1 part way", diff.Stderr, StringComparison.Ordinal);
        Assert.Contains("a path longer than 4095 bytes", daemon.AllOutput, StringComparison.Ordinal);

        Assert.False(daemon.HasExited, "the daemon died: " + daemon.AllOutput);
        output.WriteLine($"after the deep tree's changes and diff: peak RSS {PeakRss(daemon.Pid) / 1048576.0:F1} MiB");

        // It serves on: the tree can be removed from the mount, the layer unmounts, and a tar applies.
        Assert.Equal(0, (await ChildProcess.RunAsync("rm", ["-rf", Path.Combine(mount, "deep")], mount)).ExitCode);
        Assert.Equal(0, (await test.CliAsync("umount", mount)).ExitCode);
        Assert.Equal(0, (await test.CliAsync("layer", "apply", "t", good)).ExitCode);
        Assert.Equal(0, await daemon.TerminateAsync());
        Assert.Empty(test.Leftovers());
    }

    private static long PeakRss(int pid)
    {
        string line = File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    // A ustar header block: name, mode 0644, size, type; checksum filled in.
    private static byte[] Header(string name, byte type, long size)
    {
        byte[] block = new byte[512];
        Encoding.ASCII.GetBytes(name).CopyTo(block, 0);
        Encoding.ASCII.GetBytes("0000644\0").CopyTo(block, 100);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(block, 108);
        Encoding.ASCII.GetBytes("0000000\0").CopyTo(block, 116);
        Encoding.ASCII.GetBytes(Convert.ToString(size, 8).PadLeft(11, '0') + "\0").CopyTo(block, 124);
        Encoding.ASCII.GetBytes("00000000000\0").CopyTo(block, 136);
        block[156] = type;
        Encoding.ASCII.GetBytes("ustar\0" + "00").CopyTo(block, 257);
        "        "u8.CopyTo(block.AsSpan(148));
        int sum = block.Sum(b => b);
        Encoding.ASCII.GetBytes(Convert.ToString(sum, 8).PadLeft(6, '0') + "\0 ").CopyTo(block, 148);
        return block;
    }

    private static byte[] Pad(byte[] data) => [.. data, .. new byte[(512 - (data.Length % 512)) % 512]];

    // "LEN key=value\n", LEN counting its own digits.
    private static byte[] PaxRecord(string key, string value)
    {
        int body = key.Length + value.Length + 3;
        int length = body + body.ToString(CultureInfo.InvariantCulture).Length;
        if (length.ToString(CultureInfo.InvariantCulture).Length + body != length)
        {
            length++;
        }

        return Encoding.UTF8.GetBytes($"{length} {key}={value}\n");
    }
}
