using BlockDriver.Interop;
using BlockDriver.Mount;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace BlockDriver.Daemon.Tests;

/// <summary>A store on a small file system of its own (a 256 MiB ext4 image on a loop device the test makes) that a
/// container's writes fill: the writer gets an error, the daemon warns once naming the layer, the layer unmounts
/// although its ext4 went read-only, operations that need space fail with a clear error and leave nothing behind,
/// and once space is freed everything works again without a restart.</summary>
[Collection(DaemonTestCollection.Name)]
public sealed class DiskFullTests(ITestOutputHelper output)
{
    private static readonly TimeSpan WriterDeadline = TimeSpan.FromMinutes(2);

    [Fact]
    public async Task A_full_store_is_a_clear_error_that_unmounts_rolls_back_and_recovers_once_space_is_freed()
    {
        await using SmallStore test = await SmallStore.CreateAsync(output);
        try
        {
            await FillRollBackAndRecoverAsync(test);
        }
        catch (Exception e)
        {
            // Printed here: a failing cleanup (below) would hide it.
            output.WriteLine($"FAILED: {e}");
            throw;
        }
    }

    private async Task FillRollBackAndRecoverAsync(SmallStore test)
    {
        DaemonProcess daemon = test.StartDaemon();
        string mount = test.Dir("m1");
        Assert.Equal(0, (await test.CliAsync("mount", "c1", mount)).ExitCode);

        // The writer fills the store through the layer: direct I/O, so the failure reaches it and not only the page
        // cache. It must end with an error, not hang and not succeed (400 MiB do not fit in the 256 MiB store).
        ProcessResult writer = await ChildProcess.RunAsync("dd",
            ["if=/dev/urandom", $"of={Path.Combine(mount, "fill")}", "bs=1M", "count=400", "oflag=direct"], test.Dir("")).WaitAsync(WriterDeadline);
        output.WriteLine($"dd: {writer}");
        Assert.NotEqual(0, writer.ExitCode);

        // Buffered writes too (what most programs do), so that the file system holds writes it cannot write back.
        ProcessResult buffered = await ChildProcess.RunAsync("dd",
            ["if=/dev/urandom", $"of={Path.Combine(mount, "more")}", "bs=1M", "count=16", "conv=fsync"], test.Dir("")).WaitAsync(WriterDeadline);
        output.WriteLine($"dd buffered: {buffered}");
        Assert.NotEqual(0, buffered.ExitCode);

        string[] warnings = [.. daemon.AllOutput.Split('\n').Where(l => l.Contains("no space left on the store's file system", StringComparison.Ordinal))];
        string warning = Assert.Single(warnings);
        Assert.Contains("warn", warning, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("c1", warning, StringComparison.Ordinal);
        Assert.Contains("bytes available", warning, StringComparison.Ordinal);

        // The layer unmounts and detaches although its ext4 may have gone read-only.
        ProcessResult umount = await test.CliAsync("umount", mount);
        Assert.True(umount.ExitCode == 0, umount.ToString());
        Assert.DoesNotContain(MountInfoEntry.ReadAll(), m => m.MountPoint == mount);
        Assert.DoesNotContain(HostLeaks.Devices(test.Root), l => l.Contains("/run/fuse/c1", StringComparison.Ordinal));
        Assert.False(File.Exists(Path.Combine(test.Root, "run", "fuse", "c1")), "the FUSE file of c1 is still there");

        // Whatever room the failed block allocation left goes too: the store's file system is full to the last block,
        // so even the catalog cannot be written. Then 160 KiB are freed: room for the catalog's journal rows, not for
        // a new layer file (212 KiB), so each operation fails in its file work, after its journal row was written.
        ProcessResult filler = await ChildProcess.RunAsync("dd", ["if=/dev/zero", $"of={test.Filler}", "bs=4k"], test.Dir("")).WaitAsync(WriterDeadline);
        Assert.NotEqual(0, filler.ExitCode);
        Assert.Contains("No space left", filler.Stderr, StringComparison.Ordinal);
        string[] files = LayerFiles(test);
        string[][] needSpace =
        [
            ["layer", "snapshot", "c2", "--id", "s2"], ["layer", "revert", "c2", "i3"], ["layer", "merge", "c3"], ["layer", "flatten", "c3"],
            ["layer", "create", "--parent", test.BaseId, "--id", "c9"],
        ];
        foreach (long freed in (long[])[0, 160 << 10])
        {
            if (freed > 0)
            {
                await using (FileStream shrink = File.OpenWrite(test.Filler))
                {
                    shrink.SetLength(shrink.Length - freed);
                }
            }

            foreach (string[] command in needSpace)
            {
                ProcessResult failed = await test.CliAsync(command);
                Assert.True(failed.ExitCode != 0, $"{string.Join(' ', command)} succeeded on a full store: {failed}");
                Assert.Contains("no space left on the store's file system", failed.Stderr, StringComparison.Ordinal);
                if (freed > 0)
                {
                    // The journal row was written and the file work failed: the operation names itself, rolled back.
                    Assert.Contains(" failed: no space left on the store's file system", failed.Stderr, StringComparison.Ordinal);
                }

                Assert.Empty(Journal(test));
                Assert.Equal(files, LayerFiles(test));
            }
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(test.Root, "layers", "c2.vhdx")));

        // Sealing needs no new space; on a full store it either works or fails clearly, and leaves no journal row.
        ProcessResult seal = await test.CliAsync("layer", "seal", "c3");
        Assert.True(seal.ExitCode == 0 || seal.Stderr.Contains("no space left", StringComparison.Ordinal), seal.ToString());
        Assert.Empty(Journal(test));

        // Space freed: the layer that filled the store mounts again (ext4 replays its journal) and shows its files;
        // then removing it frees the store, and new layers are made, mounted, written and snapshotted, with the same
        // daemon.
        File.Delete(test.Filler);
        Assert.Equal(0, (await test.CliAsync("mount", "c1", mount)).ExitCode);
        output.WriteLine($"c1 holds: {string.Join(", ", Directory.GetFileSystemEntries(mount).Select(Path.GetFileName))}");
        ProcessResult small = await ChildProcess.RunAsync("dd",
            ["if=/dev/urandom", $"of={Path.Combine(mount, "after")}", "bs=64k", "count=16", "conv=fsync"], test.Dir("")).WaitAsync(WriterDeadline);
        Assert.True(small.ExitCode == 0, $"writing to c1 once space was freed: {small}");
        Assert.Equal(0, (await test.CliAsync("umount", mount)).ExitCode);
        Assert.Equal(0, (await test.CliAsync("layer", "rm", "c1")).ExitCode);

        Assert.Equal(0, (await test.CliAsync("layer", "create", "--parent", test.BaseId, "--id", "c5")).ExitCode);
        string again = test.Dir("m5");
        Assert.Equal(0, (await test.CliAsync("mount", "c5", again)).ExitCode);
        ProcessResult write = await ChildProcess.RunAsync("dd",
            ["if=/dev/urandom", $"of={Path.Combine(again, "data")}", "bs=1M", "count=32", "conv=fsync"], test.Dir("")).WaitAsync(WriterDeadline);
        Assert.True(write.ExitCode == 0, write.ToString());
        Assert.Equal(0, (await test.CliAsync("umount", again)).ExitCode);
        Assert.Equal(0, (await test.CliAsync("layer", "snapshot", "c5", "--id", "s5")).ExitCode);
        Assert.Equal(0, (await test.CliAsync("layer", "snapshot", "c2", "--id", "s2")).ExitCode);
        Assert.Empty(Journal(test));

        Assert.Single(daemon.AllOutput.Split('\n'), l => l.Contains("no space left on the store's file system", StringComparison.Ordinal));
        Assert.Equal(0, await daemon.TerminateAsync());
    }

    private static string[] LayerFiles(SmallStore test) =>
        [.. Directory.GetFileSystemEntries(Path.Combine(test.Root, "layers")).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];

    // The journal as the catalog holds it (read-only: the daemon and the CLI hold the store).
    private static List<string> Journal(SmallStore test)
    {
        var builder = new SqliteConnectionStringBuilder { DataSource = Path.Combine(test.Root, "catalog.db"), Mode = SqliteOpenMode.ReadOnly, Pooling = false };
        using var connection = new SqliteConnection(builder.ToString());
        connection.Open();
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = "SELECT op || ' ' || layer FROM operations";
        using SqliteDataReader reader = command.ExecuteReader();
        var rows = new List<string>();
        while (reader.Read())
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }

    /// <summary>DIR/store is a 256 MiB ext4 file system of its own (DIR/store.img on a loop device), holding a store with
    /// a 512 MiB base file system layer and writable layers over it: c1 (to fill), c2 (to snapshot) and c3 over the
    /// image i3 (to merge). Disposing unmounts and detaches everything, the small file system last, even after a
    /// failure.</summary>
    private sealed class SmallStore : DaemonTestDirectory
    {
        private readonly List<DaemonProcess> _daemons = [];
        private string? _loop;

        private SmallStore(ITestOutputHelper output)
            : base("diskfull", output)
        {
        }

        public string BaseId { get; } = BaseFilesystem.LayerIdFor(512L << 20);

        public string Filler => Path.Combine(Root, "filler");

        private string Image => Dir("store.img");

        public static async Task<SmallStore> CreateAsync(ITestOutputHelper output)
        {
            var test = new SmallStore(output);
            try
            {
                await test.RunAsync("truncate", "-s", "256M", test.Image);
                await test.RunAsync("mkfs.ext4", "-q", "-F", test.Image);
                test._loop = (await test.RunAsync("losetup", "--find", "--show", test.Image)).Trim();
                Directory.CreateDirectory(test.Root);
                await test.RunAsync("mount", test._loop, test.Root);
                Directory.Delete(Path.Combine(test.Root, "lost+found"));

                // Through the CLI, so that no store handle (its lock file) stays open in this process and keeps the
                // small file system busy.
                foreach (string[] command in (string[][])[
                    ["layer", "create", "--size", "512M", "--kind", "container", "--id", "c1"],
                    ["layer", "create", "--parent", test.BaseId, "--id", "c2"],
                    ["layer", "create", "--parent", test.BaseId, "--kind", "image", "--id", "i3"],
                    ["layer", "seal", "i3"],
                    ["layer", "create", "--parent", "i3", "--id", "c3"]])
                {
                    ProcessResult result = await test.CliAsync(command);
                    if (result.ExitCode != 0)
                    {
                        throw new InvalidOperationException($"blockdriver {string.Join(' ', command)}: {result}");
                    }
                }

                return test;
            }
            catch
            {
                await test.DisposeAsync();
                throw;
            }
        }

        public DaemonProcess StartDaemon()
        {
            DaemonProcess daemon = StartDaemonProcess([]);
            _daemons.Add(daemon);
            return daemon;
        }

        /// <summary>The daemons go and what they left on the store (layer mounts, their loop devices, the FUSE mount),
        /// then the small file system and its loop device, then the directory.</summary>
        public override async ValueTask DisposeAsync()
        {
            var failures = new List<Exception>();
            foreach (Func<Task> step in (Func<Task>[])[StopDaemonsAsync, UnmountStoreAsync])
            {
                try
                {
                    await step();
                }
                catch (Exception ex)
                {
                    failures.Add(ex);
                }
            }

            try
            {
                await base.DisposeAsync();
            }
            catch (Exception ex)
            {
                failures.Add(ex);
            }

            if (failures.Count > 0)
            {
                throw new AggregateException("Cleaning up the small store failed.", failures);
            }
        }

        // The base class kills its daemons too, but only after the small file system must be gone.
        private async Task StopDaemonsAsync()
        {
            foreach (DaemonProcess daemon in _daemons.Where(d => !d.HasExited))
            {
                await daemon.KillAsync();
            }

            HostLeaks.RemoveOrThrow(Root);
        }

        private async Task UnmountStoreAsync()
        {
            // A killed daemon's last file handles may take a moment to go; then lazily, so that the loop device goes.
            for (int attempt = 0; MountInfoEntry.ReadAll().Any(m => m.MountPoint == Root); attempt++)
            {
                ProcessResult umount = await ChildProcess.RunAsync("umount", attempt < 20 ? [Root] : ["-l", Root], Dir(""));
                Output.WriteLine($"$ umount {Root} (attempt {attempt})\n{umount}");
                if (umount.ExitCode != 0 && attempt >= 20)
                {
                    throw new InvalidOperationException($"umount -l {Root}: {umount}");
                }

                if (umount.ExitCode != 0)
                {
                    await Task.Delay(250);
                }
            }

            if (_loop is not null && LoopDevice.ListBound().Any(b => $"/dev/loop{b.Index}" == _loop))
            {
                // After a lazy unmount the device clears once the file system lets go (autoclear).
                await RunAsync("losetup", "-d", _loop);
                DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
                while (LoopDevice.ListBound().Any(b => $"/dev/loop{b.Index}" == _loop) && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(250);
                }
            }
        }

        private async Task<string> RunAsync(string program, params string[] args)
        {
            ProcessResult result = await ChildProcess.RunAsync(program, args, Dir(""));
            Output.WriteLine($"$ {program} {string.Join(' ', args)}\n{result}");
            if (result.ExitCode != 0)
            {
                throw new InvalidOperationException($"{program} {string.Join(' ', args)}: {result}");
            }

            return result.Stdout;
        }
    }
}
