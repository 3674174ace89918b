using BlockDriver.Interop;

namespace BlockDriver.Core.Tests;

/// <summary>The lock type's semantics in one process: OFD locks belong to the open file description, so two opens
/// conflict (as two processes would) while one open re-takes and converts its own lock freely.</summary>
public sealed class FileLockTests : IDisposable
{
    private readonly TempDirectory _temp = new("filelock");

    [Fact]
    public void Two_opens_of_one_lock_file_in_one_process_conflict_and_the_holder_is_this_process()
    {
        string path = _temp.GetFilePath("a.lock");
        using FileLock first = FileLock.Open(path);
        using FileLock second = FileLock.Open(path);
        Assert.True(first.TryLock(exclusive: false, out _));
        Assert.True(second.TryLock(exclusive: false, out _));
        Assert.False(second.TryLock(exclusive: true, out LockHolder? holder));
        Assert.Equal(Environment.ProcessId, holder?.Pid);

        first.Unlock();
        Assert.True(second.TryLock(exclusive: true, out _));
        Assert.False(first.TryLock(exclusive: false, out _));
    }

    [Fact]
    public void One_open_retakes_and_converts_its_own_lock()
    {
        string path = _temp.GetFilePath("b.lock");
        using FileLock held = FileLock.Open(path);
        Assert.True(held.TryLock(exclusive: false, out _));
        Assert.True(held.TryLock(exclusive: false, out _));
        Assert.True(held.TryLock(exclusive: true, out _));
        Assert.True(held.TryLock(exclusive: false, out _));
        Assert.Null(held.Holder(exclusive: true));

        using FileLock other = FileLock.Open(path);
        Assert.True(other.TryLock(exclusive: false, out _));
    }

    [Fact]
    public async Task A_wait_with_a_deadline_gives_up_in_time_and_takes_the_lock_once_it_is_free()
    {
        string path = _temp.GetFilePath("c.lock");
        using FileLock first = FileLock.Open(path);
        using FileLock second = FileLock.Open(path);
        Assert.True(first.TryLock(exclusive: true, out _));

        var clock = System.Diagnostics.Stopwatch.StartNew();
        (bool taken, LockHolder? holder) = await second.TryLockAsync(exclusive: false, TimeSpan.FromMilliseconds(200));
        Assert.False(taken);
        Assert.Equal(Environment.ProcessId, holder?.Pid);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(190), TimeSpan.FromSeconds(10));

        Task<(bool, LockHolder?)> waiting = second.TryLockAsync(exclusive: false, TimeSpan.FromSeconds(30));
        first.Dispose();
        Assert.True((await waiting).Item1);
    }

    [Fact]
    public void A_lock_file_is_created_0600_and_a_symbolic_link_in_its_place_is_refused()
    {
        string path = _temp.GetFilePath("d.lock");
        using (FileLock.Open(path))
        {
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        string link = _temp.GetFilePath("e.lock");
        File.CreateSymbolicLink(link, path);
        IOException error = Assert.Throws<IOException>(() => FileLock.Open(link));
        Assert.Contains("symbolic link", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _temp.Dispose();
}
