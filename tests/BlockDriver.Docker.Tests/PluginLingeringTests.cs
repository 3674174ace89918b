using System.Diagnostics;
using System.Net;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>Lingering mounts (<c>Docker:UnmountDelay</c>): the last Put leaves the layer mounted for the delay, a Get
/// meanwhile takes the mount over, what needs the layer unmounted unmounts it at once, and a daemon restarted after a
/// crash unmounts the lingering mounts it made again.</summary>
[Collection(DockerTestCollection.Name)]
public sealed class PluginLingeringTests(ITestOutputHelper output)
{
    // Long enough that nothing in a test waits for it.
    private const string LongDelay = "--Docker:UnmountDelay=600";

    [Fact]
    public async Task A_get_within_the_delay_takes_over_the_mount_which_goes_after_the_delay()
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        DaemonProcess daemon = test.StartDaemon("--Docker:UnmountDelay=3s");
        PluginClient plugin = test.Client();
        await plugin.OkAsync("CreateReadWrite", new { ID = "c1" });
        string dir = (await plugin.OkAsync("Get", new { ID = "c1" })).GetProperty("Dir").GetString()!;
        string device = await DeviceAsync(plugin, "c1");
        File.WriteAllText(Path.Combine(dir, "file"), "kept\n");

        // The last Put leaves it mounted; it holds no Get, so another Put is still one without a Get.
        await plugin.OkAsync("Put", new { ID = "c1" });
        Assert.Equal([dir], test.LayerMounts());
        Assert.Contains("a Put without a matching Get", await plugin.FailAsync("Put", new { ID = "c1" }), StringComparison.Ordinal);

        // A Get within the delay: the same mount (same loop device), no new one.
        Assert.Equal(dir, (await plugin.OkAsync("Get", new { ID = "c1" })).GetProperty("Dir").GetString());
        Assert.Equal(device, await DeviceAsync(plugin, "c1"));
        Assert.Contains("Get c1: took over its lingering mount", daemon.AllOutput, StringComparison.Ordinal);
        Assert.Equal("kept\n", File.ReadAllText(Path.Combine(dir, "file")));

        // A held mount does not go with the delay.
        await Task.Delay(TimeSpan.FromSeconds(4));
        Assert.Equal([dir], test.LayerMounts());

        // After the last Put, the delay unmounts it; a later Get mounts it again, with its content.
        var clock = Stopwatch.StartNew();
        await plugin.OkAsync("Put", new { ID = "c1" });
        await WaitUntilAsync(() => test.LayerMounts().Count == 0, "the lingering mount to go");
        output.WriteLine($"unmounted {clock.Elapsed.TotalSeconds:F1} s after the last Put");
        Assert.InRange(clock.Elapsed.TotalSeconds, 2.5, 30);
        _ = daemon.WaitForLine("Unmounted lingering layer c1", TimeSpan.FromSeconds(10));
        Assert.False(File.Exists(LingeringFile(test)), "nothing lingers, yet the state file is there");
        await plugin.OkAsync("Get", new { ID = "c1" });
        Assert.Equal("kept\n", File.ReadAllText(Path.Combine(dir, "file")));
        await plugin.OkAsync("Put", new { ID = "c1" });
        await test.StopAndCheckAsync(daemon);
    }

    [Fact]
    public async Task Remove_sealing_apply_diff_cleanup_and_stop_unmount_a_lingering_layer_at_once()
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        DaemonProcess daemon = test.StartDaemon(LongDelay);
        PluginClient plugin = test.Client();

        // Remove: unmounted and gone, without the warning about mounts Get left.
        string removed = await LingerAsync(plugin, test, "CreateReadWrite", "r1");
        await plugin.OkAsync("Remove", new { ID = "r1" });
        Assert.False((await plugin.OkAsync("Exists", new { ID = "r1" })).GetProperty("Exists").GetBoolean());
        Assert.DoesNotContain(removed, test.LayerMounts());
        Assert.False(Directory.Exists(removed));
        Assert.DoesNotContain("Removing layer r1 that Get left mounted", daemon.AllOutput, StringComparison.Ordinal);

        // A child of a lingering writable layer (dockerd's ID-init): unmounted, sealed, and its content is the child's.
        string init = await LingerAsync(plugin, test, "CreateReadWrite", "p-init", ("hosts", "127.0.0.1 localhost\n"));
        await plugin.OkAsync("CreateReadWrite", new { ID = "p", Parent = "p-init" });
        Assert.DoesNotContain(init, test.LayerMounts());
        Assert.Equal("sealed", (await plugin.OkAsync("GetMetadata", new { ID = "p-init" })).GetProperty("Metadata").GetProperty("State").GetString());
        string child = await LingerAsync(plugin, test, "Get", "p");
        Assert.Equal("127.0.0.1 localhost\n", File.ReadAllText(Path.Combine(child, "hosts")));

        // ApplyDiff of an image layer someone mounted and put back.
        string image = await LingerAsync(plugin, test, "Create", "img");
        PluginReply applied = await plugin.ApplyDiffAsync("img", "", LayerTar.Build(LayerTar.File("etc-file", "from the tar\n")));
        Assert.True(applied.Status == HttpStatusCode.OK && applied.Err is null, applied.Body);
        Assert.DoesNotContain(image, test.LayerMounts());

        // Cleanup (dockerd stopping): every lingering mount goes.
        Assert.Contains(child, test.LayerMounts());
        string other = await LingerAsync(plugin, test, "CreateReadWrite", "c2");
        await plugin.OkAsync("Cleanup", new { });
        Assert.Empty(test.LayerMounts());
        Assert.False(File.Exists(LingeringFile(test)));

        // The daemon's stop: the lingering mount goes, with the state file; the store is left with nothing mounted.
        Assert.Equal(other, await LingerAsync(plugin, test, "Get", "c2"));
        Assert.True(File.Exists(LingeringFile(test)));
        await test.StopAndCheckAsync(daemon);
        Assert.False(File.Exists(LingeringFile(test)), "the state file outlived a clean stop");
    }

    [Fact]
    public async Task A_mount_lingering_when_the_daemon_died_is_unmounted_after_the_restart_with_its_data()
    {
        await using PluginTestStore test = PluginTestStore.Create(output);
        DaemonProcess daemon = test.StartDaemon("--Docker:UnmountDelay=3s");
        PluginClient plugin = test.Client();

        // c1 lingers with a file nobody synced; c2 is held by a Get (a running container).
        string lingering = await LingerAsync(plugin, test, "CreateReadWrite", "c1", ("file", "written, never synced\n"));
        await plugin.OkAsync("CreateReadWrite", new { ID = "c2" });
        string held = (await plugin.OkAsync("Get", new { ID = "c2" })).GetProperty("Dir").GetString()!;
        Assert.Equal(["c1"], File.ReadAllLines(LingeringFile(test)));
        await daemon.KillAsync();

        // The new daemon makes both mounts again; c1's unmount is scheduled, c2 stays for its Put.
        DaemonProcess second = test.StartDaemon("--Docker:UnmountDelay=3s");
        Assert.Equal(new[] { held, lingering }.Order(), test.LayerMounts().Order());
        Assert.Contains("Layer c1 was lingering when the daemon died", second.AllOutput, StringComparison.Ordinal);
        await WaitUntilAsync(() => !test.LayerMounts().Contains(lingering), "the recovered lingering mount to go");
        _ = second.WaitForLine("Unmounted lingering layer c1", TimeSpan.FromSeconds(10));
        Assert.Equal([held], test.LayerMounts());
        Assert.False(File.Exists(LingeringFile(test)));

        // The last Put flushed c1 before it lingered, so the crash lost nothing.
        await plugin.OkAsync("Get", new { ID = "c1" });
        Assert.Equal("written, never synced\n", File.ReadAllText(Path.Combine(lingering, "file")));
        await plugin.OkAsync("Put", new { ID = "c1" });
        await plugin.OkAsync("Put", new { ID = "c2" });
        Assert.Contains("a Put without a matching Get", await plugin.FailAsync("Put", new { ID = "c2" }), StringComparison.Ordinal);
        await test.StopAndCheckAsync(second);
    }

    // Makes the layer (unless verb is Get), mounts it, writes the files, and Puts it: it lingers. Returns its directory.
    private static async Task<string> LingerAsync(PluginClient plugin, PluginTestStore test, string verb, string id, params (string Name, string Content)[] files)
    {
        if (verb != "Get")
        {
            await plugin.OkAsync(verb, new { ID = id });
        }

        string dir = (await plugin.OkAsync("Get", new { ID = id })).GetProperty("Dir").GetString()!;
        foreach ((string name, string content) in files)
        {
            File.WriteAllText(Path.Combine(dir, name), content);
        }

        await plugin.OkAsync("Put", new { ID = id });
        Assert.Contains(dir, test.LayerMounts());
        return dir;
    }

    private static async Task<string> DeviceAsync(PluginClient plugin, string id) =>
        (await plugin.OkAsync("GetMetadata", new { ID = id })).GetProperty("Metadata").GetProperty("Device").GetString()!;

    private static string LingeringFile(PluginTestStore test) => Path.Combine(test.Root, "run", "docker-blockdriver.lingering");

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }
}
