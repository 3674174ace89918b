namespace BlockDriver.Nbd;

/// <summary>Limits of an <see cref="NbdServer"/>. The defaults bound a hostile client's memory to
/// <see cref="MaxBufferedBytesPerConnection"/> and the server's to <see cref="MaxBufferedBytes"/>.</summary>
public sealed record NbdServerOptions
{
    /// <summary>Requests one connection may have in flight; the server stops reading that connection's requests
    /// while it has this many. Default 64.</summary>
    public int MaxRequestsPerConnection { get; init; } = 64;

    /// <summary>Bytes of request and reply data one connection may hold in buffers. Default 64 MiB; at least
    /// the 32 MiB maximum payload.</summary>
    public long MaxBufferedBytesPerConnection { get; init; } = 64L * 1024 * 1024;

    /// <summary>Bytes of request and reply data all connections together may hold. Default 512 MiB; at least
    /// the 32 MiB maximum payload.</summary>
    public long MaxBufferedBytes { get; init; } = 512L * 1024 * 1024;

    /// <summary>Connections served at once; more are accepted and closed at once. Default 1024.</summary>
    public int MaxConnections { get; init; } = 1024;

    /// <summary>Time a client has from connecting to finishing option negotiation. Default 60 s.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(60);
}
