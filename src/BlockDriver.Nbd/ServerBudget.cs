namespace BlockDriver.Nbd;

/// <summary>The server's buffer budget (<see cref="NbdServerOptions"/> remarks): a reserve of
/// <see cref="ReservePerConnection"/> bytes for each connection, and a shared pool for the rest. Connections take
/// from it through their own <see cref="ConnectionBudget"/>. Thread-safe.</summary>
internal sealed class ServerBudget
{
    private long _reservedInUse;

    public ServerBudget(NbdServerOptions options)
    {
        // The shared pool must hold one maximum payload, or a 32 MiB read could never be served.
        long total = Math.Max(options.MaxBufferedBytes, NbdLimits.MaxPayload);
        int connections = Math.Max(1, options.MaxConnections);
        ReservePerConnection = Math.Clamp(options.ReservedBytesPerConnection, 0, (total - NbdLimits.MaxPayload) / connections);
        Shared = new ByteBudget(total - (ReservePerConnection * connections));
    }

    /// <summary>Bytes each connection may hold without taking from <see cref="Shared"/>.</summary>
    public long ReservePerConnection { get; }

    /// <summary>The pool every connection takes from beyond its reserve, first come, first served.</summary>
    public ByteBudget Shared { get; }

    /// <summary>Bytes held by all connections, from their reserves and from the shared pool.</summary>
    public long InUse => Shared.Capacity - Shared.Available + Volatile.Read(ref _reservedInUse);

    /// <summary>Counts <paramref name="bytes"/> (negative: returned) taken from a connection's reserve.</summary>
    public void CountReserved(long bytes) => Interlocked.Add(ref _reservedInUse, bytes);
}
