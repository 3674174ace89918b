namespace BlockDriver.Nbd;

/// <summary>The buffer bytes one connection may hold: at most its cap in all (requests beyond it wait, in arrival
/// order), taken from the connection's reserve while that has room, else from the server's shared pool. Thread-safe.</summary>
internal sealed class ConnectionBudget
{
    private readonly ServerBudget _server;
    private readonly ByteBudget _own;
    private long _reserveUsed;

    /// <summary>A budget capped at <paramref name="cap"/> bytes (raised to the 32 MiB maximum payload).</summary>
    public ConnectionBudget(ServerBudget server, long cap)
    {
        _server = server;
        _own = new ByteBudget(Math.Max(cap, NbdLimits.MaxPayload));
    }

    /// <summary>Bytes this connection holds.</summary>
    public long InUse => _own.Capacity - _own.Available;

    /// <summary>Waits for <paramref name="bytes"/> (at most the cap) and takes them; returns where they came from, to
    /// be passed back to <see cref="Release"/>. Cancelling gives up the place in the queues and takes nothing.</summary>
    public async ValueTask<BudgetSource> AcquireAsync(long bytes, CancellationToken ct)
    {
        await _own.AcquireAsync(bytes, ct).ConfigureAwait(false);
        if (TryTakeReserve(bytes))
        {
            return BudgetSource.Reserve;
        }

        try
        {
            await _server.Shared.AcquireAsync(bytes, ct).ConfigureAwait(false);
            return BudgetSource.Shared;
        }
        catch (OperationCanceledException)
        {
            _own.Release(bytes);
            throw;
        }
    }

    /// <summary>Returns bytes taken by <see cref="AcquireAsync"/> from <paramref name="source"/>.</summary>
    public void Release(long bytes, BudgetSource source)
    {
        if (source == BudgetSource.Reserve)
        {
            Interlocked.Add(ref _reserveUsed, -bytes);
            _server.CountReserved(-bytes);
        }
        else
        {
            _server.Shared.Release(bytes);
        }

        _own.Release(bytes);
    }

    private bool TryTakeReserve(long bytes)
    {
        long used = Volatile.Read(ref _reserveUsed);
        while (used + bytes <= _server.ReservePerConnection)
        {
            long seen = Interlocked.CompareExchange(ref _reserveUsed, used + bytes, used);
            if (seen == used)
            {
                _server.CountReserved(bytes);
                return true;
            }

            used = seen;
        }

        return false;
    }
}
