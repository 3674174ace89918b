using System.Diagnostics;
using BlockDriver.Interop;

namespace BlockDriver.Core.Tests;

/// <summary>The store lock (run/store.lock) against other processes, through the real <c>blockdriver</c>: a holder that
/// never lets go makes a change fail within the deadline, naming the holder; a lock file replaced by a symbolic link
/// is refused.</summary>
public sealed class StoreLockTests : StoreTestBase
{
    private const string DeadlineSeconds = "1";

    // What the issue reproduced: a local user's process takes a shared lock on run/store.lock and keeps it. "ofd" is
    // the lock BlockDriver itself takes (another blockdriver or anyone's fcntl F_OFD_SETLK), "posix" an lockf(3) one.
    [Theory]
    [InlineData("ofd-shared")]
    [InlineData("posix-exclusive")]
    public async Task Layer_create_gives_up_on_a_store_lock_another_process_holds_and_names_the_holder(string how)
    {
        await SealedBaseAsync();
        string lockFile = Path.Combine(Root, "run", "store.lock");
        using (Process holder = PythonLockHolder.Start(lockFile, how))
        {
            try
            {
                await PythonLockHolder.WaitUntilLockedAsync(holder);
                var clock = Stopwatch.StartNew();
                ProcessResult result = await CliProcess.RunAsync(
                    new Dictionary<string, string> { [StoreMutex.WaitLimitVariable] = DeadlineSeconds },
                    "--root", Root, "layer", "create", "--parent", "base", "--id", "c");
                clock.Stop();

                Assert.True(result.ExitCode != 0, result.ToString());
                Assert.Contains($"the store lock {lockFile} is held by pid {holder.Id} (", result.Stderr, StringComparison.Ordinal);
                Assert.Contains("python3", result.Stderr, StringComparison.Ordinal);
                Assert.Contains($"waiting {DeadlineSeconds} s", result.Stderr, StringComparison.Ordinal);
                // The CLI's own start-up is most of this; the wait itself is the 1 s deadline.
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"took {clock.Elapsed}");
            }
            finally
            {
                holder.Kill();
                await holder.WaitForExitAsync();
            }
        }

        await ReopenStoreAsync();
        Assert.Null(Store.Find("c"));

        // Nothing of the refusal stays behind: once the holder is gone the same command works.
        ProcessResult again = await CliProcess.RunAsync(
            new Dictionary<string, string> { [StoreMutex.WaitLimitVariable] = DeadlineSeconds },
            "--root", Root, "layer", "create", "--parent", "base", "--id", "c");
        Assert.True(again.ExitCode == 0, again.ToString());
    }

    [Fact]
    public async Task A_store_lock_file_replaced_by_a_symbolic_link_is_refused_and_its_target_left_alone()
    {
        await SealedBaseAsync();
        string lockFile = Path.Combine(Root, "run", "store.lock");
        string victim = Temp.GetFilePath("victim");
        await File.WriteAllTextAsync(victim, "not a lock file\n");
        File.SetUnixFileMode(victim, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.Delete(lockFile);
        File.CreateSymbolicLink(lockFile, victim);

        ProcessResult result = await CliProcess.RunAsync(
            new Dictionary<string, string>(), "--root", Root, "layer", "create", "--parent", "base", "--id", "c");

        Assert.True(result.ExitCode != 0, result.ToString());
        Assert.Contains($"{lockFile}: the lock file is a symbolic link; refusing to follow it.", result.Stderr, StringComparison.Ordinal);
        Assert.Equal("not a lock file\n", await File.ReadAllTextAsync(victim));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(victim));
        Assert.Null(Store.Find("c"));
    }

    // Another process's lock (an OFD lock the test process cannot see as its own) is reported by pid, found through
    // /proc/PID/fdinfo since F_OFD_GETLK says l_pid = -1.
    [Fact]
    public async Task The_holder_of_an_ofd_lock_in_another_process_is_named_by_pid_and_command_line()
    {
        string path = Temp.GetFilePath("held.lock");
        using Process holder = PythonLockHolder.Start(path, "ofd-exclusive");
        try
        {
            await PythonLockHolder.WaitUntilLockedAsync(holder);
            using FileLock mine = FileLock.Open(path);
            Assert.False(mine.TryLock(exclusive: false, out LockHolder? who));
            Assert.NotNull(who);
            Assert.Equal(holder.Id, who.Pid);
            Assert.Contains("python3", who.CommandLine, StringComparison.Ordinal);
        }
        finally
        {
            holder.Kill();
            await holder.WaitForExitAsync();
        }
    }

    /// <summary>python3 holding a lock on a file until killed; prints "locked" once it holds it.</summary>
    private static class PythonLockHolder
    {
        public static Process Start(string lockFile, string how)
        {
            string python = ChildProcess.Locate("python3") ?? throw new InvalidOperationException("python3 is needed to hold a lock from another process.");
            var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, UseShellExecute = false };
            start.ArgumentList.Add("-c");
            // struct flock on x86-64/arm64: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid (+4
            // bytes of padding); F_OFD_SETLK is 37.
            start.ArgumentList.Add("""
                import fcntl, os, struct, sys, time
                path, how = sys.argv[1], sys.argv[2]
                shared = how.endswith('shared')
                fd = os.open(path, (os.O_RDONLY if shared else os.O_RDWR) | os.O_CREAT, 0o600)
                if how.startswith('ofd'):
                    fcntl.fcntl(fd, 37, struct.pack('hhqqi4x', fcntl.F_RDLCK if shared else fcntl.F_WRLCK, 0, 0, 0, 0))
                else:
                    fcntl.lockf(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
                print('locked', flush=True)
                time.sleep(120)
                """);
            start.ArgumentList.Add(lockFile);
            start.ArgumentList.Add(how);
            return Process.Start(start)!;
        }

        public static async Task WaitUntilLockedAsync(Process process)
        {
            string? line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal("locked", line);
        }
    }
}
