using System.Globalization;
using Xunit.Abstractions;

namespace BlockDriver.Daemon.Tests;

/// <summary>The store is root's alone, whatever the umask: a local user who is not root (a process run with
/// <c>setpriv --reuid=65534</c>, nobody) cannot read a layer's bytes, the daemon's FUSE files or what is mounted
/// from the store, nor hold the store's locks; modes an older version left loose are repaired at start.</summary>
[Collection(DaemonTestCollection.Name)]
public sealed class DaemonBoundaryTests(ITestOutputHelper output)
{
    private const UnixFileMode Owner = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerDirectory = Owner | UnixFileMode.UserExecute;

    [Fact]
    public async Task A_local_user_reaches_nothing_in_the_store_and_loose_modes_are_repaired_at_start()
    {
        await using DaemonTestStore test = await DaemonTestStore.CreateAsync(output);

        // The directory holding the store is open to everyone, so every refusal below is the store's own doing; the
        // store and a layer file are made loose, as a store of an older version (created under umask 022) was.
        string outer = Path.GetDirectoryName(test.Root)!;
        File.SetUnixFileMode(outer, OwnerDirectory | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        string layerFile = Path.Combine(test.Root, "layers", "c1.vhdx");
        File.SetUnixFileMode(test.Root, (UnixFileMode)0x1ED);
        File.SetUnixFileMode(layerFile, (UnixFileMode)0x1A4);

        DaemonProcess daemon = test.StartDaemon();
        string mount = test.Dir("m1");
        Assert.Equal(0, (await test.CliAsync("mount", "c1", mount)).ExitCode);
        await File.WriteAllTextAsync(Path.Combine(mount, "secret"), "root only");
        File.SetUnixFileMode(Path.Combine(mount, "secret"), Owner);

        Assert.Equal(OwnerDirectory, File.GetUnixFileMode(test.Root));
        foreach (string directory in (string[])["layers", "run", "run/locks", "mnt"])
        {
            Assert.Equal(OwnerDirectory, File.GetUnixFileMode(Path.Combine(test.Root, directory)));
        }

        Assert.Equal(Owner, File.GetUnixFileMode(Path.Combine(test.Root, "catalog.db")));
        Assert.Equal(Owner, File.GetUnixFileMode(layerFile));
        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(Path.Combine(test.Root, "layers", "base-fs-ext4.vhdx")));
        Assert.Equal(Owner, File.GetUnixFileMode(Path.Combine(test.Root, "run", "daemon.lock")));
        Assert.All(Directory.GetFiles(Path.Combine(test.Root, "run", "locks")), f => Assert.Equal(Owner, File.GetUnixFileMode(f)));
        Assert.Equal(Owner, File.GetUnixFileMode(Path.Combine(test.Root, "run", "fuse", "c1")));
        string fuse = Assert.Single(File.ReadAllLines("/proc/self/mountinfo"), l => l.Split(' ')[4] == Path.Combine(test.Root, "run", "fuse"));
        Assert.DoesNotContain("allow_other", fuse, StringComparison.Ordinal);

        // As nobody: the directory around the store is readable (the test can fail), the store is not.
        Assert.Equal(0, (await AsNobodyAsync(test, "ls", outer)).ExitCode);
        foreach (string[] attempt in (string[][])[
            ["ls", test.Root],
            ["cat", layerFile],
            ["cat", Path.Combine(test.Root, "run", "fuse", "c1")],
            ["cat", Path.Combine(test.Root, "catalog.db")],
            ["python3", "-c", $"import fcntl; f = open('{Path.Combine(test.Root, "run", "store.lock")}', 'a'); fcntl.lockf(f, fcntl.LOCK_SH)"],
            ["python3", "-c", $"import fcntl; f = open('{Path.Combine(test.Root, "run", "daemon.lock")}', 'a'); fcntl.flock(f, fcntl.LOCK_SH)"]])
        {
            ProcessResult denied = await AsNobodyAsync(test, attempt);
            Assert.True(denied.ExitCode != 0, $"{string.Join(' ', attempt)} as nobody succeeded: {denied.Stdout}");
            Assert.Contains("Permission denied", denied.Stderr, StringComparison.Ordinal);
        }

        Assert.Equal(0, (await test.CliAsync("umount", mount)).ExitCode);
        Assert.Equal(0, await daemon.TerminateAsync());
        Assert.Empty(test.Leftovers());
    }

    [Fact]
    public async Task An_admin_mount_is_nosuid_nodev_unless_asked_otherwise()
    {
        await using DaemonTestStore test = await DaemonTestStore.CreateAsync(output);
        File.SetUnixFileMode(Path.GetDirectoryName(test.Root)!, (UnixFileMode)0x1ED);
        File.SetUnixFileMode(test.Dir(""), (UnixFileMode)0x1ED);
        DaemonProcess daemon = test.StartDaemon();
        string mount = test.Dir("m1");

        // A layer's content as an image or a container could leave it: a setuid-root copy of id(1) and a
        // world-readable block device node for the layer's own loop device.
        ProcessResult first = await test.CliAsync("mount", "c1", mount);
        Assert.Equal(0, first.ExitCode);
        Assert.Contains("rw,nosuid,nodev", first.Stdout, StringComparison.Ordinal);
        File.SetUnixFileMode(mount, (UnixFileMode)0x1ED);
        File.Copy("/usr/bin/id", Path.Combine(mount, "id"));
        File.SetUnixFileMode(Path.Combine(mount, "id"), (UnixFileMode)0x9ED); // 4755
        string loop = MountOptions(mount).Device;
        ProcessResult stat = await ChildProcess.RunAsync("stat", ["-c", "%t %T", loop], test.Dir(""));
        string[] numbers = stat.Stdout.Trim().Split(' ');
        Assert.Equal(0, (await ChildProcess.RunAsync("mknod", ["-m", "666", Path.Combine(mount, "disk"), "b",
            Convert.ToInt32(numbers[0], 16).ToString(CultureInfo.InvariantCulture), Convert.ToInt32(numbers[1], 16).ToString(CultureInfo.InvariantCulture)], test.Dir(""))).ExitCode);
        Assert.Contains("nosuid", MountOptions(mount).Options, StringComparison.Ordinal);
        Assert.Contains("nodev", MountOptions(mount).Options, StringComparison.Ordinal);

        Assert.Equal("65534", (await AsNobodyAsync(test, Path.Combine(mount, "id"), "-u")).Stdout.Trim());
        ProcessResult device = await AsNobodyAsync(test, "head", "-c", "512", Path.Combine(mount, "disk"));
        Assert.NotEqual(0, device.ExitCode);
        Assert.Contains("Permission denied", device.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, (await test.CliAsync("umount", mount)).ExitCode);

        // Asked for: both take effect, so the refusals above are the mount options' doing.
        ProcessResult trusted = await test.CliAsync("mount", "--suid", "--dev", "c1", mount);
        Assert.Equal(0, trusted.ExitCode);
        Assert.Contains("(rw, ", trusted.Stdout, StringComparison.Ordinal);
        ProcessResult ps = await test.CliAsync("ps");
        Assert.Contains(mount, ps.Stdout, StringComparison.Ordinal);
        Assert.Equal("0", (await AsNobodyAsync(test, Path.Combine(mount, "id"), "-u")).Stdout.Trim());
        Assert.Equal(0, (await AsNobodyAsync(test, "head", "-c", "512", Path.Combine(mount, "disk"))).ExitCode);

        // The same directory asked again with other options is refused, not silently shared.
        ProcessResult other = await test.CliAsync("mount", "c1", mount);
        Assert.NotEqual(0, other.ExitCode);
        Assert.Contains("already has layer c1 mounted rw.", other.Stderr, StringComparison.Ordinal);

        Assert.Equal(0, (await test.CliAsync("umount", mount)).ExitCode);
        Assert.Equal(0, await daemon.TerminateAsync());
        Assert.Empty(test.Leftovers());
    }

    // The source device and the per-mount options of the mount at directory, from /proc/self/mountinfo.
    private static (string Device, string Options) MountOptions(string directory)
    {
        string[] fields = Assert.Single(File.ReadAllLines("/proc/self/mountinfo"), l => l.Split(' ')[4] == directory).Split(' ');
        int separator = Array.IndexOf(fields, "-");
        return (fields[separator + 2], fields[5]);
    }

    private static Task<ProcessResult> AsNobodyAsync(DaemonTestStore test, params string[] command) =>
        ChildProcess.RunAsync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", .. command], test.Dir(""));
}
