using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace BlockDriver.Daemon.Tests;

/// <summary>The real <c>blockdriver daemon</c> as a child process on a temp store, driven by the real CLI.</summary>
[Collection(DaemonTestCollection.Name)]
public sealed class DaemonTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Without_a_daemon_mount_umount_and_ps_say_so()
    {
        await using DaemonTestStore test = await DaemonTestStore.CreateAsync(output);
        string expected = $"blockdriver: error: no daemon is running for {test.Root} (start one with 'blockdriver daemon').";
        foreach (string[] args in new[] { new[] { "ps" }, ["mount", "c1", test.Dir("m")], ["umount", test.Dir("m")] })
        {
            ProcessResult result = await test.CliAsync(args);
            Assert.Equal(1, result.ExitCode);
            Assert.Equal(expected, result.Stderr.Trim());
        }

        Assert.False(Directory.Exists(test.Dir("m")));
    }

    [Fact]
    public async Task Mount_ps_umount_work_through_the_daemon_and_SIGTERM_unmounts_everything()
    {
        await using DaemonTestStore test = await DaemonTestStore.CreateAsync(output);
        DaemonProcess daemon = test.StartDaemon();
        string socket = AdminEndpoint.SocketPath(test.Root);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(socket));

        ProcessResult second = await test.CliAsync("daemon");
        Assert.Equal(1, second.ExitCode);
        Assert.Equal($"blockdriver: error: a daemon is already running for {test.Root} (pid {daemon.Pid}).", second.Stderr.Trim());

        string dir = test.Dir("m1");
        Assert.Equal(0, (await test.CliAsync("mount", "c1", dir)).ExitCode);
        Assert.Equal(0, (await test.CliAsync("mount", "c1", dir)).ExitCode);
        await File.WriteAllTextAsync(Path.Combine(dir, "hello"), "from the container");

        ProcessResult ps = await test.CliAsync("ps", "--json");
        Assert.Equal(0, ps.ExitCode);
        MountJson mount = Assert.Single(JsonSerializer.Deserialize(ps.Stdout, AdminJsonContext.Default.ListMountJson)!);
        Assert.Equal(("c1", dir, false, 2), (mount.Layer, mount.Directory, mount.ReadOnly, mount.References));
        Assert.StartsWith("/dev/loop", mount.LoopDevice, StringComparison.Ordinal);
        Assert.Equal(Path.Combine(test.Root, "run", "fuse", "c1"), mount.FuseFile);
        ProcessResult table = await test.CliAsync("ps");
        Assert.Contains(mount.LoopDevice, table.Stdout, StringComparison.Ordinal);
        Assert.Contains(dir, table.Stdout, StringComparison.Ordinal);

        ProcessResult umount = await test.CliAsync("umount", dir);
        Assert.Equal((0, $"{dir} still mounted (1 reference(s) left)"), (umount.ExitCode, umount.Stdout.Trim()));
        ProcessResult missing = await test.CliAsync("umount", test.Dir("nothing"));
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("no layer is mounted at", missing.Stderr, StringComparison.Ordinal);
        ProcessResult unknown = await test.CliAsync("mount", "no-such-layer", test.Dir("m2"));
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("no-such-layer", unknown.Stderr, StringComparison.Ordinal);

        // Still mounted (one reference) when SIGTERM comes: the daemon unmounts, detaches and flushes on its way out.
        Assert.NotEmpty(test.Leftovers());
        Assert.Equal(0, await daemon.TerminateAsync());
        Assert.Empty(test.Leftovers());
        Assert.Contains("stopped cleanly", daemon.AllOutput, StringComparison.Ordinal);
        foreach (string file in new[] { socket, AdminEndpoint.PidPath(test.Root), AdminEndpoint.StatePath(test.Root) })
        {
            Assert.False(File.Exists(file), file);
        }

        // The file written through the mount is in the layer: mount it again under a new daemon.
        DaemonProcess again = test.StartDaemon();
        Assert.Equal(0, (await test.CliAsync("mount", "--read-only", "c1", dir)).ExitCode);
        Assert.Equal("from the container", await File.ReadAllTextAsync(Path.Combine(dir, "hello")));
        Assert.Equal(0, await again.TerminateAsync());
        Assert.Empty(test.Leftovers());
    }

    [Fact]
    public async Task A_daemon_killed_with_layers_mounted_is_cleaned_up_and_remounted_by_the_next_one()
    {
        await using DaemonTestStore test = await DaemonTestStore.CreateAsync(output);
        DaemonProcess daemon = test.StartDaemon();
        string dir = test.Dir("m1");
        Assert.Equal(0, (await test.CliAsync("mount", "c1", dir)).ExitCode);
        string file = Path.Combine(dir, "synced");
        await using (var stream = new FileStream(file, FileMode.CreateNew))
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes("acknowledged before the crash"));
            stream.Flush(flushToDisk: true);
        }

        await daemon.KillAsync();
        Assert.True(File.Exists(AdminEndpoint.StatePath(test.Root)));
        Assert.True(File.Exists(AdminEndpoint.SocketPath(test.Root)));
        Assert.NotEmpty(test.Leftovers());

        DaemonProcess next = test.StartDaemon();
        Assert.Contains("did not stop cleanly", next.AllOutput, StringComparison.Ordinal);
        Assert.Contains("Remounted layer c1", next.AllOutput, StringComparison.Ordinal);
        Assert.Equal("acknowledged before the crash", await File.ReadAllTextAsync(file));
        ProcessResult ps = await test.CliAsync("ps", "--json");
        MountJson mount = Assert.Single(JsonSerializer.Deserialize(ps.Stdout, AdminJsonContext.Default.ListMountJson)!);
        Assert.Equal(dir, mount.Directory);

        // Only the new daemon's devices remain: one FUSE mount, one file system mount, one loop device.
        Assert.Equal(3, test.Leftovers().Count);
        await File.WriteAllTextAsync(Path.Combine(dir, "after"), "written after the restart");
        Assert.Equal(0, await next.TerminateAsync());
        Assert.Empty(test.Leftovers());
        Assert.False(File.Exists(AdminEndpoint.StatePath(test.Root)));
    }

    [Fact]
    public async Task With_Remount_false_a_restart_only_cleans_up()
    {
        await using DaemonTestStore test = await DaemonTestStore.CreateAsync(output);
        DaemonProcess daemon = test.StartDaemon();
        Assert.Equal(0, (await test.CliAsync("mount", "c1", test.Dir("m1"))).ExitCode);
        await daemon.KillAsync();

        DaemonProcess next = test.StartDaemon(null, "--Remount=false");
        Assert.Contains("Not remounting layer c1", next.AllOutput, StringComparison.Ordinal);
        Assert.DoesNotContain(test.Leftovers(), l => !l.Contains("fuse", StringComparison.Ordinal));
        Assert.Equal("[]", (await test.CliAsync("ps", "--json")).Stdout.Trim());
        Assert.Equal(0, await next.TerminateAsync());
        Assert.Empty(test.Leftovers());
    }

    [Fact]
    public async Task Settings_come_from_the_file_then_the_environment_then_the_command_line()
    {
        await using DaemonTestStore test = await DaemonTestStore.CreateAsync(output);
        string config = test.Dir("daemon.json");
        await File.WriteAllTextAsync(config, """{ "Nbd": { "Socket": "run/from-file.sock", "Exports": [ "c1" ] }, "Remount": false }""");

        // File only.
        DaemonProcess daemon = test.StartDaemon(null, "--config", config);
        Assert.Contains("NBD server for", daemon.AllOutput, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(test.Root, "run", "from-file.sock")));
        Assert.Equal(0, await daemon.TerminateAsync());

        // The environment beats the file.
        var environment = new Dictionary<string, string> { ["BLOCKDRIVER_Nbd__Socket"] = "run/from-env.sock" };
        daemon = test.StartDaemon(environment, "--config", config);
        Assert.True(File.Exists(Path.Combine(test.Root, "run", "from-env.sock")));
        Assert.Equal(0, await daemon.TerminateAsync());

        // The command line beats both; STORE/daemon.json is read without --config.
        File.Copy(config, Path.Combine(test.Root, "daemon.json"));
        daemon = test.StartDaemon(environment, "--Nbd:Socket=run/from-args.sock");
        Assert.True(File.Exists(Path.Combine(test.Root, "run", "from-args.sock")));
        Assert.Equal(0, await daemon.TerminateAsync());

        ProcessResult missing = await test.CliAsync("daemon", "--config", test.Dir("nope.json"));
        Assert.Equal((1, $"blockdriver: error: --config {test.Dir("nope.json")}: no such file."), (missing.ExitCode, missing.Stderr.Trim()));
        await File.WriteAllTextAsync(config, "{ not json");
        ProcessResult malformed = await test.CliAsync("daemon", "--config", config);
        Assert.Equal(1, malformed.ExitCode);
        Assert.Contains(config, malformed.Stderr, StringComparison.Ordinal);
        Assert.Empty(test.Leftovers());
    }

    [Fact]
    public async Task Under_systemd_the_daemon_notifies_ready_and_stopping()
    {
        await using DaemonTestStore test = await DaemonTestStore.CreateAsync(output);
        string path = test.Dir("notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(path));
        DaemonProcess daemon = test.StartDaemon(new Dictionary<string, string> { ["NOTIFY_SOCKET"] = path });
        Assert.StartsWith("READY=1\n", await ReceiveAsync(notify), StringComparison.Ordinal);
        Assert.Equal(0, await daemon.TerminateAsync());
        Assert.Equal("STOPPING=1", await ReceiveAsync(notify));
    }

    private static async Task<string> ReceiveAsync(Socket socket)
    {
        byte[] buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int length = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.UTF8.GetString(buffer, 0, length);
    }
}
