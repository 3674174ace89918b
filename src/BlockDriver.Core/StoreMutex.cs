using System.Globalization;
using BlockDriver.Abstractions;
using BlockDriver.Interop;

namespace BlockDriver.Core;

/// <summary>Serialises changes to one store across threads and processes: an in-process semaphore per store root,
/// then the exclusive lock (<see cref="FileLock"/>) on run/store.lock. Everything that changes the catalog or the
/// layer files holds it from the journal entry to the final commit, so reconciliation (which also holds it) only ever
/// sees journal entries of processes that died.</summary>
/// <remarks>The wait for another process has a deadline (<see cref="WaitLimit"/>): a process that holds the store
/// lock and never lets go (a hung or hostile one: the file is the store owner's, but any process that can open it
/// can lock it) makes changes fail with the holder's pid and command line, never wait forever. The wait for this
/// process's own operations has none: it is bounded by them.</remarks>
internal static class StoreMutex
{
    /// <summary>The environment variable that sets <see cref="WaitLimit"/>, in seconds (fractions allowed).</summary>
    public const string WaitLimitVariable = "BLOCKDRIVER_STORE_LOCK_TIMEOUT";

    private static readonly TimeSpan DefaultWaitLimit = TimeSpan.FromSeconds(30);

    private static readonly Dictionary<string, Entry> Entries = new(StringComparer.Ordinal);

    /// <summary>How long a change waits for another process to release run/store.lock: 30 s, or
    /// BLOCKDRIVER_STORE_LOCK_TIMEOUT seconds.</summary>
    public static TimeSpan WaitLimit =>
        double.TryParse(Environment.GetEnvironmentVariable(WaitLimitVariable), NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) && seconds >= 0
            ? TimeSpan.FromSeconds(seconds)
            : DefaultWaitLimit;

    /// <summary>Waits for and takes the store lock; dispose the result to release it.</summary>
    /// <exception cref="BlockDriverException">InUse when another process held it for all of <see cref="WaitLimit"/>
    /// (the message names the lock file, the holder and the wait); Unavailable when the lock file cannot be opened
    /// (a symbolic link in its place among the reasons).</exception>
    public static async Task<IDisposable> AcquireAsync(StorePaths paths, CancellationToken ct)
    {
        Entry entry;
        lock (Entries)
        {
            if (!Entries.TryGetValue(paths.Root, out entry!))
            {
                entry = new Entry(paths.StoreLock);
                Entries.Add(paths.Root, entry);
            }
        }

        await entry.Gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            try
            {
                entry.File ??= FileLock.Open(entry.Path);
            }
            catch (IOException ex)
            {
                throw new BlockDriverException(ErrorKind.Unavailable, ex.Message, ex);
            }

            TimeSpan limit = WaitLimit;
            (bool taken, LockHolder? holder) = await entry.File.TryLockAsync(exclusive: true, limit, ct).ConfigureAwait(false);
            if (!taken)
            {
                throw new BlockDriverException(ErrorKind.InUse, string.Create(CultureInfo.InvariantCulture,
                    $"the store lock {entry.Path} is held by {holder?.ToString() ?? "another process"}; gave up after waiting {limit.TotalSeconds:0.#} s (set {WaitLimitVariable} to wait longer)."));
            }

            return new Releaser(entry);
        }
        catch
        {
            entry.Gate.Release();
            throw;
        }
    }

    private sealed class Entry(string path)
    {
        public string Path { get; } = path;

        public SemaphoreSlim Gate { get; } = new(1, 1);

        public FileLock? File { get; set; }
    }

    private sealed class Releaser(Entry entry) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                try
                {
                    entry.File!.Unlock();
                }
                finally
                {
                    entry.Gate.Release();
                }
            }
        }
    }
}
