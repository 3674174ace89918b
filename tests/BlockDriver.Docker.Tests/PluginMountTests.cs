using System.Net.Sockets;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>Get/Put reference counts, Remove and Cleanup of mounted layers, mounts across a daemon crash, and the
/// plugin socket's life.</summary>
[Collection(DockerTestCollection.Name)]
public sealed class PluginMountTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Nested_gets_share_one_mount_until_the_last_put()
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        DaemonProcess daemon = test.StartDaemon();
        PluginClient plugin = test.Client();
        await plugin.OkAsync("CreateReadWrite", new { ID = "c1" });

        var dirs = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            dirs.Add((await plugin.OkAsync("Get", new { ID = "c1" })).GetProperty("Dir").GetString()!);
        }

        string dir = Path.Combine(test.Root, "mnt", "c1");
        Assert.All(dirs, d => Assert.Equal(dir, d));
        Assert.Equal([dir], test.LayerMounts());
        File.WriteAllText(Path.Combine(dir, "file"), "kept\n");
        await plugin.OkAsync("Put", new { ID = "c1" });
        await plugin.OkAsync("Put", new { ID = "c1" });
        Assert.Equal([dir], test.LayerMounts());
        Assert.Equal("kept\n", File.ReadAllText(Path.Combine(dir, "file")));
        await plugin.OkAsync("Put", new { ID = "c1" });
        Assert.Empty(test.LayerMounts());
        Assert.Contains("a Put without a matching Get", await plugin.FailAsync("Put", new { ID = "c1" }), StringComparison.Ordinal);

        // What was written survives the unmount.
        await plugin.OkAsync("Get", new { ID = "c1" });
        Assert.Equal("kept\n", File.ReadAllText(Path.Combine(dir, "file")));
        await plugin.OkAsync("Put", new { ID = "c1" });
        await test.StopAndCheckAsync(daemon);
    }

    [Fact]
    public async Task Remove_of_a_mounted_layer_unmounts_it_first_and_a_busy_one_is_refused()
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        DaemonProcess daemon = test.StartDaemon();
        PluginClient plugin = test.Client();
        await plugin.OkAsync("CreateReadWrite", new { ID = "c1" });
        await plugin.OkAsync("CreateReadWrite", new { ID = "c2" });
        await plugin.OkAsync("Get", new { ID = "c1" });
        await plugin.OkAsync("Get", new { ID = "c1" });
        await plugin.OkAsync("Remove", new { ID = "c1" });
        Assert.False((await plugin.OkAsync("Exists", new { ID = "c1" })).GetProperty("Exists").GetBoolean());
        Assert.False(Directory.Exists(Path.Combine(test.Root, "mnt", "c1")));
        Assert.Contains("Removing layer c1 that Get left mounted (2 reference(s))", daemon.AllOutput, StringComparison.Ordinal);

        // A file open on the mount keeps the file system busy: Remove fails and the layer stays, mounted.
        string dir = (await plugin.OkAsync("Get", new { ID = "c2" })).GetProperty("Dir").GetString()!;
        await using (FileStream open = File.Create(Path.Combine(dir, "busy")))
        {
            string err = await plugin.FailAsync("Remove", new { ID = "c2" });
            Assert.Contains("busy", err, StringComparison.OrdinalIgnoreCase);
            Assert.True((await plugin.OkAsync("Exists", new { ID = "c2" })).GetProperty("Exists").GetBoolean());
            Assert.Equal([dir], test.LayerMounts());
        }

        await plugin.OkAsync("Remove", new { ID = "c2" });
        Assert.Empty(test.LayerMounts());
        await test.StopAndCheckAsync(daemon);
    }

    [Fact]
    public async Task Cleanup_releases_every_mount_get_left()
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        DaemonProcess daemon = test.StartDaemon();
        PluginClient plugin = test.Client();
        await plugin.OkAsync("CreateReadWrite", new { ID = "c1" });
        await plugin.OkAsync("CreateReadWrite", new { ID = "c2" });
        await plugin.OkAsync("Get", new { ID = "c1" });
        await plugin.OkAsync("Get", new { ID = "c1" });
        await plugin.OkAsync("Get", new { ID = "c2" });
        Assert.Equal(2, test.LayerMounts().Count);
        await plugin.OkAsync("Cleanup", new { });
        Assert.Empty(test.LayerMounts());
        Assert.True((await plugin.OkAsync("Exists", new { ID = "c1" })).GetProperty("Exists").GetBoolean());
        await test.StopAndCheckAsync(daemon);
    }

    [Fact]
    public async Task A_mount_survives_a_daemon_crash_with_its_references()
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        DaemonProcess daemon = test.StartDaemon();
        PluginClient plugin = test.Client();
        await plugin.OkAsync("CreateReadWrite", new { ID = "c1" });
        string dir = (await plugin.OkAsync("Get", new { ID = "c1" })).GetProperty("Dir").GetString()!;
        await plugin.OkAsync("Get", new { ID = "c1" });
        File.WriteAllText(Path.Combine(dir, "file"), "before the crash\n");
        // Acknowledged data survives a crash: the test syncs, as an application that wants its data kept does.
        ProcessResult sync = await ChildProcess.RunAsync("sync", ["-f", Path.Combine(dir, "file")], "/");
        Assert.Equal(0, sync.ExitCode);
        await daemon.KillAsync();

        // The stale socket a SIGKILL leaves is replaced by the new daemon's.
        Assert.True(File.Exists(test.SocketPath));
        DaemonProcess second = test.StartDaemon();
        Assert.Equal([dir], test.LayerMounts());
        Assert.Equal("before the crash\n", File.ReadAllText(Path.Combine(dir, "file")));
        await plugin.OkAsync("Put", new { ID = "c1" });
        Assert.Equal([dir], test.LayerMounts());
        await plugin.OkAsync("Put", new { ID = "c1" });
        Assert.Empty(test.LayerMounts());
        await test.StopAndCheckAsync(second);
    }

    [Fact]
    public async Task The_socket_is_root_only_and_a_live_one_is_not_taken_over()
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        DaemonProcess daemon = test.StartDaemon();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(test.SocketPath));

        // A second daemon (of another store) configured with the same socket refuses to start.
        string otherRoot = test.Dir("other");
        ProcessResult refused = await ChildProcess.RunAsync(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet",
            [Path.Combine(AppContext.BaseDirectory, "blockdriver.dll"), "--root", otherRoot, "daemon", "--docker", $"--Docker:Socket={test.SocketPath}"], test.Dir(""));
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("another server is listening on " + test.SocketPath, refused.Stderr + refused.Stdout, StringComparison.Ordinal);

        // The first one still answers.
        PluginClient plugin = test.Client();
        await plugin.OkAsync("/Plugin.Activate", null);
        await test.StopAndCheckAsync(daemon);
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        Assert.Throws<SocketException>(() => probe.Connect(new UnixDomainSocketEndPoint(test.SocketPath)));
    }
}
