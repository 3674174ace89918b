using BlockDriver.Abstractions;

namespace BlockDriver.Core;

/// <summary>Who has which layer open, in this process and (through run/locks/ID.lock) in every other: any number of
/// readers or one writer. A lease that cannot be had fails at once with InUse naming the holder's pid; nothing
/// waits.</summary>
/// <remarks>Thread-safe. The in-process table is needed because fcntl locks of one process never conflict with
/// each other (see <see cref="LockFile"/>).</remarks>
internal static class LayerLeases
{
    private static readonly Dictionary<string, Entry> Entries = new(StringComparer.Ordinal);

    /// <summary>Takes a read (shared) or write (exclusive) lease on layer <paramref name="id"/>.</summary>
    /// <exception cref="BlockDriverException">InUse when it conflicts with a lease held here or elsewhere.</exception>
    public static IDisposable Acquire(StorePaths paths, string id, bool exclusive)
    {
        string path = paths.LayerLock(id);
        lock (Entries)
        {
            Entries.TryGetValue(path, out Entry? entry);
            if (entry is not null && (entry.Writer || (exclusive && entry.Readers > 0)))
            {
                throw InUse(id, Environment.ProcessId, entry.Writer ? "writing" : "reading");
            }

            bool created = entry is null;
            entry ??= new Entry(LockFile.Open(path));
            try
            {
                if (created || exclusive)
                {
                    if (!entry.File.TryLock(exclusive, out int holder))
                    {
                        throw InUse(id, holder, exclusive ? "reading or writing" : "writing");
                    }
                }
            }
            catch
            {
                if (created)
                {
                    entry.File.Dispose();
                }

                throw;
            }

            if (exclusive)
            {
                entry.Writer = true;
            }
            else
            {
                entry.Readers++;
            }

            Entries[path] = entry;
            return new Lease(path, exclusive);
        }
    }

    /// <summary>Throws InUse when anyone (this process or another) has the layer open.</summary>
    public static void EnsureUnused(StorePaths paths, string id)
    {
        using IDisposable lease = Acquire(paths, id, exclusive: true);
    }

    private static BlockDriverException InUse(string id, int pid, string how) =>
        new(ErrorKind.InUse, pid == Environment.ProcessId || pid <= 0
            ? $"layer {id} is in use by pid {Environment.ProcessId} (this process has it open for {how})."
            : $"layer {id} is in use by pid {pid} (open for {how}).");

    private static void Release(string path, bool exclusive)
    {
        lock (Entries)
        {
            Entry entry = Entries[path];
            if (exclusive)
            {
                entry.Writer = false;
            }
            else
            {
                entry.Readers--;
            }

            if (!entry.Writer && entry.Readers == 0)
            {
                Entries.Remove(path);
                entry.File.Dispose();
            }
        }
    }

    private sealed class Entry(LockFile file)
    {
        public LockFile File { get; } = file;

        public int Readers { get; set; }

        public bool Writer { get; set; }
    }

    private sealed class Lease(string path, bool exclusive) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                Release(path, exclusive);
            }
        }
    }
}
