using BlockDriver.Abstractions;
using BlockDriver.Interop;

namespace BlockDriver.Core;

/// <summary>Who has which layer open, in this process and (through run/locks/ID.lock) in every other: any number of
/// readers or one writer. A lease that cannot be had fails at once with InUse naming the holder's pid; nothing
/// waits.</summary>
/// <remarks>Thread-safe. The process opens each lock file once and counts its own leases in the in-process table: the
/// one <see cref="FileLock"/> is shared by every reader of this process (a second open file description would
/// conflict with the first under OFD locks, and one lock cannot say how many readers it stands for).</remarks>
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
            entry ??= new Entry(OpenLock(path));
            try
            {
                if (created || exclusive)
                {
                    if (!entry.File.TryLock(exclusive, out LockHolder? holder))
                    {
                        throw InUse(id, holder?.Pid ?? 0, exclusive ? "reading or writing" : "writing", holder);
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

    private static BlockDriverException InUse(string id, int pid, string how, LockHolder? holder = null) =>
        new(ErrorKind.InUse, pid == Environment.ProcessId
            ? $"layer {id} is in use by pid {Environment.ProcessId} (this process has it open for {how})."
            : $"layer {id} is in use by {holder?.ToString() ?? "another process"} (open for {how}).");

    private static FileLock OpenLock(string path)
    {
        try
        {
            return FileLock.Open(path);
        }
        catch (IOException ex)
        {
            throw new BlockDriverException(ErrorKind.Unavailable, ex.Message, ex);
        }
    }

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

    private sealed class Entry(FileLock file)
    {
        public FileLock File { get; } = file;

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
