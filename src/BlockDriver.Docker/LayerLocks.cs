namespace BlockDriver.Docker;

/// <summary>Per-layer-id async locks. dockerd calls the plugin concurrently; an operation locks every layer it
/// reads, mounts or changes (a Create its id and its parent, a Diff the layer and its parent), so that a Get
/// racing a Remove, two Creates of one id or of children of one writable parent, or a Put racing a Changes that
/// reads the mount, happen one after the other. Ids are taken in ordinal order, so two operations never wait for
/// each other in a cycle.</summary>
/// <remarks>Thread-safe. An id's entry exists only while someone holds or waits for it.</remarks>
internal sealed class LayerLocks
{
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    /// <summary>Waits for the locks of <paramref name="ids"/> (nulls and repeats ignored); dispose the result to
    /// release them.</summary>
    public async Task<IDisposable> AcquireAsync(IEnumerable<string?> ids, CancellationToken ct)
    {
        string[] sorted = [.. ids.OfType<string>().Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
        var held = new Held(this);
        try
        {
            foreach (string id in sorted)
            {
                Entry entry = Enter(id);
                try
                {
                    await entry.Gate.WaitAsync(ct).ConfigureAwait(false);
                }
                catch
                {
                    Leave(id, entry, release: false);
                    throw;
                }

                held.Add(id, entry);
            }

            return held;
        }
        catch
        {
            held.Dispose();
            throw;
        }
    }

    private Entry Enter(string id)
    {
        lock (_entries)
        {
            if (!_entries.TryGetValue(id, out Entry? entry))
            {
                entry = new Entry();
                _entries.Add(id, entry);
            }

            entry.Users++;
            return entry;
        }
    }

    private void Leave(string id, Entry entry, bool release)
    {
        if (release)
        {
            entry.Gate.Release();
        }

        lock (_entries)
        {
            if (--entry.Users == 0)
            {
                _entries.Remove(id);
                entry.Gate.Dispose();
            }
        }
    }

    private sealed class Entry
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        // Holders and waiters; guarded by the dictionary's lock.
        public int Users { get; set; }
    }

    private sealed class Held(LayerLocks owner) : IDisposable
    {
        private readonly List<(string Id, Entry Entry)> _held = [];

        public void Add(string id, Entry entry) => _held.Add((id, entry));

        public void Dispose()
        {
            for (int i = _held.Count - 1; i >= 0; i--)
            {
                owner.Leave(_held[i].Id, _held[i].Entry, release: true);
            }

            _held.Clear();
        }
    }
}
