namespace BlockDriver.Nbd;

/// <summary>A pool of <see cref="Capacity"/> bytes handed out whole and first come, first served: a request for
/// n bytes waits until n are free and no earlier request is still waiting, so a large request is never starved by
/// small ones and two waiters never each hold half of what the other needs. Thread-safe.</summary>
internal sealed class ByteBudget
{
    private readonly Lock _lock = new();
    private readonly LinkedList<(long Bytes, TaskCompletionSource Granted)> _waiters = new();
    private long _available;

    public ByteBudget(long capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _available = capacity;
    }

    /// <summary>Total bytes.</summary>
    public long Capacity { get; }

    /// <summary>Bytes not handed out (for tests and diagnostics).</summary>
    public long Available
    {
        get
        {
            lock (_lock)
            {
                return _available;
            }
        }
    }

    /// <summary>Waits for <paramref name="bytes"/> (at most <see cref="Capacity"/>) and takes them; give them back
    /// with <see cref="Release"/>. Cancelling gives up the place in the queue.</summary>
    public async ValueTask AcquireAsync(long bytes, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, Capacity);
        LinkedListNode<(long Bytes, TaskCompletionSource Granted)> node;
        lock (_lock)
        {
            if (_waiters.Count == 0 && _available >= bytes)
            {
                _available -= bytes;
                return;
            }

            node = _waiters.AddLast((bytes, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)));
        }

        try
        {
            await node.Value.Granted.Task.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            lock (_lock)
            {
                if (node.List is not null)
                {
                    // Still queued: leave the queue; the waiters behind may now fit.
                    _waiters.Remove(node);
                    GrantWaiters();
                    throw;
                }
            }

            // Granted in the same instant as cancelled: the caller will not use the bytes, so return them.
            Release(bytes);
            throw;
        }
    }

    /// <summary>Returns bytes taken by <see cref="AcquireAsync"/>.</summary>
    public void Release(long bytes)
    {
        lock (_lock)
        {
            _available += bytes;
            if (_available > Capacity)
            {
                throw new InvalidOperationException("More bytes released than acquired.");
            }

            GrantWaiters();
        }
    }

    // Hands bytes to waiters in arrival order while the first one fits. Caller holds _lock.
    private void GrantWaiters()
    {
        while (_waiters.First is { } first && first.Value.Bytes <= _available)
        {
            _available -= first.Value.Bytes;
            _waiters.RemoveFirst();
            first.Value.Granted.SetResult();
        }
    }
}
