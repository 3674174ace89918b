using BlockDriver.Vhdx;

namespace BlockDriver.Core;

/// <summary>One open <see cref="VhdxChain"/> (files plus merged read index) per sealed layer that open layers sit
/// on, shared by all of them: twenty containers on one image read through one index, built once. A chain is
/// closed when the last layer using it closes, so the cache never holds files that merge, flatten or remove
/// could replace (those need exclusive leases, which open layers' shared leases on their ancestors prevent).</summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class ChainCache
{
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    /// <summary>The shared chain of sealed layer <paramref name="id"/>, opened by <paramref name="open"/> when no
    /// one holds it; dispose the lease when done.</summary>
    public Lease Acquire(string id, Func<VhdxChain> open)
    {
        lock (_entries)
        {
            if (!_entries.TryGetValue(id, out Entry? entry))
            {
                entry = new Entry(open());
                _entries.Add(id, entry);
            }

            entry.References++;
            return new Lease(this, id, entry.Chain);
        }
    }

    /// <summary>Chains open now (for tests and figures).</summary>
    public int Count
    {
        get
        {
            lock (_entries)
            {
                return _entries.Count;
            }
        }
    }

    private void Release(string id)
    {
        VhdxChain? closing = null;
        lock (_entries)
        {
            Entry entry = _entries[id];
            if (--entry.References == 0)
            {
                _entries.Remove(id);
                closing = entry.Chain;
            }
        }

        closing?.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    private sealed class Entry(VhdxChain chain)
    {
        public VhdxChain Chain { get; } = chain;

        public int References { get; set; }
    }

    /// <summary>A hold on a shared chain.</summary>
    public sealed class Lease : IDisposable
    {
        private readonly ChainCache _cache;
        private readonly string _id;
        private int _released;

        internal Lease(ChainCache cache, string id, VhdxChain chain)
        {
            _cache = cache;
            _id = id;
            Chain = chain;
        }

        /// <summary>The chain.</summary>
        public VhdxChain Chain { get; }

        /// <inheritdoc/>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                _cache.Release(_id);
            }
        }
    }
}
