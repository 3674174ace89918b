namespace BlockDriver.Core;

/// <summary>Serialises changes to one store across threads and processes: an in-process semaphore per store root,
/// then the fcntl lock on run/store.lock. Everything that changes the catalog or the layer files holds it from the
/// journal entry to the final commit, so reconciliation (which also holds it) only ever sees journal entries of
/// processes that died.</summary>
internal static class StoreMutex
{
    private static readonly Dictionary<string, Entry> Entries = new(StringComparer.Ordinal);

    /// <summary>Waits for and takes the store lock; dispose the result to release it.</summary>
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
            // Blocking wait in the kernel for another process; on a thread-pool thread so the caller's thread is
            // free. Long operations (merge, flatten, import) hold the lock for their whole run.
            await Task.Run(() =>
            {
                entry.File ??= LockFile.Open(entry.Path);
                entry.File.LockExclusive();
            }, ct).ConfigureAwait(false);
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

        public LockFile? File { get; set; }
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
