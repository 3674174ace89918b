using System.Diagnostics;
using BlockDriver.Nbd.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests;

/// <summary>nbdfuse → losetup → mkfs.ext4 → mount → files → umount → remount: a filesystem on our server, through
/// four connections (multi-conn). Needs root (CI runs as root). Everything set up is torn down in
/// <see cref="DisposeAsync"/>, in reverse order, even when the test fails.</summary>
public sealed class NbdfuseTests : RealClientFixture
{
    private Process? _nbdfuse;
    private string? _loop;
    private string? _mounted;
    private string? _fuseMount;
    private ServeProcess? _server;

    public NbdfuseTests(ITestOutputHelper output)
        : base(output)
    {
    }

    [Fact]
    public async Task An_ext4_filesystem_on_nbdfuse_and_a_loop_device_keeps_its_files_across_remounts()
    {
        Assert.True(Environment.UserName == "root", "this test needs root (loop devices, mount); CI runs as root");
        await CreateChainAsync();
        _server = await ServeAsync("top.vhdx");
        string fuseDir = PathOf("fuse");
        string mountDir = PathOf("mnt");
        Directory.CreateDirectory(fuseDir);
        Directory.CreateDirectory(mountDir);

        _nbdfuse = StartNbdfuse(fuseDir, _server.Uri("top.vhdx"));
        _fuseMount = fuseDir;
        string pidFile = PathOf("nbdfuse.pid");
        await WaitForAsync(() => File.Exists(pidFile) || _nbdfuse.HasExited, "nbdfuse to mount");
        if (_nbdfuse.HasExited)
        {
            Assert.Fail($"nbdfuse exited with {_nbdfuse.ExitCode}: {await _nbdfuse.StandardError.ReadToEndAsync()}");
        }

        _loop = (await Tool.RunOkAsync(Output, "losetup", "--find", "--show", Path.Combine(fuseDir, "nbd"))).Stdout.Trim();
        await Tool.RunOkAsync(Output, "mkfs.ext4", "-q", "-F", _loop);
        await Tool.RunOkAsync(Output, "mount", _loop, mountDir);
        _mounted = mountDir;

        byte[] big = TestPatterns.Bytes(5, 8 * MiB);
        await File.WriteAllTextAsync(Path.Combine(mountDir, "hello.txt"), "hello over NBD\n");
        Directory.CreateDirectory(Path.Combine(mountDir, "dir"));
        await File.WriteAllBytesAsync(Path.Combine(mountDir, "dir", "big.bin"), big);
        await Tool.RunOkAsync(Output, "umount", mountDir);
        _mounted = null;

        await Tool.RunOkAsync(Output, "mount", _loop, mountDir);
        _mounted = mountDir;
        Assert.Equal("hello over NBD\n", await File.ReadAllTextAsync(Path.Combine(mountDir, "hello.txt")));
        Assert.Equal(big, await File.ReadAllBytesAsync(Path.Combine(mountDir, "dir", "big.bin")));

        await TearDownAsync();
        await _server.StopAsync();

        // The filesystem is in the layer file: e2fsck reads it clean offline.
        await BlockDriverCli.RunOkAsync(Output, Dir, "img", "convert", "top.vhdx", "fs.raw");
        await Tool.RunOkAsync(Output, "e2fsck", "-f", "-n", PathOf("fs.raw"));
    }

    public override async Task DisposeAsync()
    {
        try
        {
            await TearDownAsync();
        }
        finally
        {
            if (_server is not null)
            {
                await _server.DisposeAsync();
            }

            await base.DisposeAsync();
        }
    }

    private Process StartNbdfuse(string directory, string uri)
    {
        var start = new ProcessStartInfo(Tool.Require("nbdfuse"))
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { "-C", "4", "-P", PathOf("nbdfuse.pid"), directory, uri })
        {
            start.ArgumentList.Add(arg);
        }

        Output.WriteLine($"$ nbdfuse -C 4 -P nbdfuse.pid {directory} {uri} &");
        return Process.Start(start)!;
    }

    // Unmount, detach, unmount FUSE, reap nbdfuse: each step runs even if an earlier one failed.
    private async Task TearDownAsync()
    {
        var errors = new List<Exception>();
        async Task Step(Func<Task> step)
        {
            try
            {
                await step();
            }
            catch (Exception e)
            {
                errors.Add(e);
            }
        }

        if (_mounted is { } mounted)
        {
            _mounted = null;
            await Step(() => Tool.RunOkAsync(Output, "umount", mounted));
        }

        if (_loop is { } loop)
        {
            _loop = null;
            await Step(() => Tool.RunOkAsync(Output, "losetup", "-d", loop));
        }

        if (_fuseMount is { } fuse)
        {
            _fuseMount = null;
            await Step(() => Tool.RunOkAsync(Output, "fusermount3", "-u", fuse));
        }

        if (_nbdfuse is { } process)
        {
            _nbdfuse = null;
            await Step(async () =>
            {
                try
                {
                    await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
                }
                catch (TimeoutException)
                {
                    process.Kill(entireProcessTree: true);
                    throw;
                }
                finally
                {
                    process.Dispose();
                }
            });
        }

        if (errors.Count > 0)
        {
            throw new AggregateException("tearing down the nbdfuse stack failed", errors);
        }
    }

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(50);
        }
    }
}
