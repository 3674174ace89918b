using System.Diagnostics;
using System.Globalization;

namespace BlockDriver.MountBench;

/// <summary>The copy-up test: one byte changed in the middle of a large file the container inherited from its image
/// (<c>dd conv=notrunc</c>, then <c>sync -f</c>, i.e. syncfs), and what it cost: the growth of the container's own
/// storage (allocated bytes, as <c>du</c> counts them) after the sync and after unmounting, and the time of dd +
/// sync.</summary>
internal static class CopyUp
{
    internal readonly record struct Result(string Setup, string Storage, long GrowthAfterSync, long GrowthAfterUnmount, TimeSpan Elapsed);

    public static async Task<Result> BlockDriverAsync(BlockDriverDaemon daemon, string work, string image, CancellationToken ct)
    {
        const string id = "copy-up";
        string directory = Path.Combine(work, "mnt-copyup");
        string layerFile = daemon.LayerFile(id);
        Session session = await BlockDriverSetup.OpenContainerAsync(daemon, image, id, directory, ct).ConfigureAwait(false);
        long before, afterSync;
        TimeSpan elapsed;
        try
        {
            await Shell.RunAsync("sync", ["-f", directory], ct).ConfigureAwait(false);
            before = await AllocatedAsync(layerFile, ct).ConfigureAwait(false);
            elapsed = await ChangeOneByteAsync(work, directory, ct).ConfigureAwait(false);
            afterSync = await AllocatedAsync(layerFile, ct).ConfigureAwait(false);
            await daemon.CliAsync(ct, "umount", directory).ConfigureAwait(false);
        }
        catch
        {
            await session.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        long afterUnmount = await AllocatedAsync(layerFile, ct).ConfigureAwait(false);
        await daemon.CliAsync(CancellationToken.None, "layer", "rm", id).ConfigureAwait(false);
        return new Result("blockdriver (VHDX, 512 B sectors)", "container layer's .vhdx", afterSync - before, afterUnmount - before, elapsed);
    }

    public static async Task<Result> QemuAsync(string work, string image, CancellationToken ct)
    {
        string top = await QemuSetup.CreateTopAsync(image, Path.Combine(work, "copy-up.qcow2"), ct).ConfigureAwait(false);
        try
        {
            long before, afterSync;
            TimeSpan elapsed;
            QemuStack stack = await QemuStack.StartAsync(top, work, Path.Combine(work, "mnt-copyup"), ct).ConfigureAwait(false);
            await using (stack.ConfigureAwait(false))
            {
                await Shell.RunAsync("sync", ["-f", stack.Mount.Directory], ct).ConfigureAwait(false);
                before = await AllocatedAsync(top, ct).ConfigureAwait(false);
                elapsed = await ChangeOneByteAsync(work, stack.Mount.Directory, ct).ConfigureAwait(false);
                afterSync = await AllocatedAsync(top, ct).ConfigureAwait(false);
            }

            long afterUnmount = await AllocatedAsync(top, ct).ConfigureAwait(false);
            return new Result("qemu-nbd (qcow2, 64 KiB clusters)", "top .qcow2", afterSync - before, afterUnmount - before, elapsed);
        }
        finally
        {
            File.Delete(top);
        }
    }

    /// <summary>overlayfs with the large file in the lower directory (on the host file system) and an empty upper
    /// directory: the container's storage is the upper directory.</summary>
    public static async Task<Result> OverlayAsync(string work, BenchOptions options, CancellationToken ct)
    {
        string root = Path.Combine(work, "overlay");
        string lower = Path.Combine(root, "lower"), upper = Path.Combine(root, "upper"), scratch = Path.Combine(root, "work"), merged = Path.Combine(root, "merged");
        foreach (string d in new[] { lower, upper, scratch, merged })
        {
            Directory.CreateDirectory(d);
        }

        try
        {
            await TestData.WriteFileAsync(Path.Combine(lower, TestData.CopyUpFile), options.CopyUpSize, seed: 2, ct).ConfigureAwait(false);
            await Shell.RunAsync("mount", ["-t", "overlay", "overlay", "-o", $"lowerdir={lower},upperdir={upper},workdir={scratch}", merged], ct).ConfigureAwait(false);
            long before, afterSync;
            TimeSpan elapsed;
            try
            {
                before = await AllocatedAsync(upper, ct).ConfigureAwait(false);
                elapsed = await ChangeOneByteAsync(work, merged, ct).ConfigureAwait(false);
                afterSync = await AllocatedAsync(upper, ct).ConfigureAwait(false);
            }
            finally
            {
                await Shell.RunAsync("umount", merged).ConfigureAwait(false);
            }

            long afterUnmount = await AllocatedAsync(upper, ct).ConfigureAwait(false);
            return new Result("overlayfs (on the host's ext4)", "upper directory", afterSync - before, afterUnmount - before, elapsed);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<TimeSpan> ChangeOneByteAsync(string work, string directory, CancellationToken ct)
    {
        string oneByte = Path.Combine(work, "one-byte");
        await File.WriteAllBytesAsync(oneByte, [0x5a], ct).ConfigureAwait(false);
        string file = Path.Combine(directory, TestData.CopyUpFile);
        long middle = new FileInfo(file).Length / 2;
        var clock = Stopwatch.StartNew();
        await Shell.RunAsync("dd", ["if=" + oneByte, "of=" + file, "bs=1", "count=1", "seek=" + middle.ToString(CultureInfo.InvariantCulture), "conv=notrunc", "status=none"], ct).ConfigureAwait(false);
        await Shell.RunAsync("sync", ["-f", file], ct).ConfigureAwait(false);
        return clock.Elapsed;
    }

    /// <summary>Allocated bytes of a file or directory tree (<c>du -s -B1</c>: st_blocks × 512, summed).</summary>
    private static async Task<long> AllocatedAsync(string path, CancellationToken ct)
    {
        string output = await Shell.RunAsync("du", ["-s", "-B1", path], ct).ConfigureAwait(false);
        return long.Parse(output.Split('\t', 2)[0], CultureInfo.InvariantCulture);
    }
}
