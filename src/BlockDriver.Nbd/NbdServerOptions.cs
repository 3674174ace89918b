namespace BlockDriver.Nbd;

/// <summary>Limits of an <see cref="NbdServer"/>. The defaults bound a hostile client's memory to
/// <see cref="MaxBufferedBytesPerConnection"/> and the server's to <see cref="MaxBufferedBytes"/>, and keep clients
/// that stall from starving the others (see <see cref="ReservedBytesPerConnection"/> and <see cref="SendTimeout"/>).</summary>
/// <remarks>
/// <para>The buffer policy: <see cref="MaxBufferedBytes"/> is split into a reserve of
/// <see cref="ReservedBytesPerConnection"/> for each of the <see cref="MaxConnections"/> connections and a shared pool
/// (the rest: 512 MiB − 1024 × 128 KiB = 384 MiB with the defaults). A connection's buffers come from its own reserve
/// while it holds less than that, and from the shared pool beyond it, up to <see cref="MaxBufferedBytesPerConnection"/>
/// in all. So clients that never read their replies can take at most the shared pool between them (six of them at
/// 64 MiB each), every other connection still gets its small reads and writes (up to 128 KiB in flight) answered at
/// once, and the shared pool comes back when the stalled connections are closed by <see cref="SendTimeout"/>.</para>
/// </remarks>
public sealed record NbdServerOptions
{
    /// <summary>Requests one connection may have in flight; the server stops reading that connection's requests
    /// while it has this many. Default 64.</summary>
    public int MaxRequestsPerConnection { get; init; } = 64;

    /// <summary>Bytes of request and reply data one connection may hold in buffers. Default 64 MiB; at least
    /// the 32 MiB maximum payload.</summary>
    public long MaxBufferedBytesPerConnection { get; init; } = 64L * 1024 * 1024;

    /// <summary>Bytes of request and reply data all connections together may hold, reserves included. Default
    /// 512 MiB; at least the 32 MiB maximum payload.</summary>
    public long MaxBufferedBytes { get; init; } = 512L * 1024 * 1024;

    /// <summary>Bytes of buffers each connection may hold whatever the other connections hold: a client's small
    /// requests are served even while stalled clients hold the whole shared pool. Default 128 KiB (a 128 KiB read,
    /// or 32 reads of 4 KiB, in flight). Lowered when <see cref="MaxConnections"/> reserves would leave the shared
    /// pool less than the 32 MiB maximum payload.</summary>
    public long ReservedBytesPerConnection { get; init; } = 128L * 1024;

    /// <summary>Connections served at once; more are accepted and closed at once. Default 1024.</summary>
    public int MaxConnections { get; init; } = 1024;

    /// <summary>Time a client has from connecting to finishing option negotiation. Default 60 s.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Time a reply may wait for the client to take the next part of it (up to 1 MiB) off the socket; then
    /// the connection is closed and its buffers freed (logged at Warning). Default 30 s, as the Linux NBD client's
    /// request timeout: a client that reads nothing for that long is stalled, not slow. <see cref="TimeSpan.Zero"/>:
    /// never.</summary>
    public TimeSpan SendTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Time a connection in transmission may go without a request (and with none in flight) before it is
    /// closed. Default <see cref="TimeSpan.Zero"/>, never: the kernel client, nbdfuse and qemu keep a connection
    /// idle for as long as a device is attached or mounted and do not reconnect, and an idle connection holds no
    /// buffers.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.Zero;

    /// <summary>Time <see cref="NbdServer.StopAsync"/> waits for connections to answer the requests they have in
    /// flight; then every connection still open is closed (its replies are lost). Default 5 s.</summary>
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(5);
}
