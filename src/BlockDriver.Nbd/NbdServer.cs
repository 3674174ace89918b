using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using BlockDriver.Abstractions;
using BlockDriver.Interop;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BlockDriver.Nbd;

/// <summary>An NBD server (fixed newstyle, no TLS) over a list of <see cref="NbdExport"/>s, listening on unix
/// sockets and, when asked, TCP. The first export is also the default export (the empty name).</summary>
/// <remarks>
/// <para>Lifecycle: construct, call <see cref="ListenUnix"/> and/or <see cref="ListenTcp"/> (each starts accepting
/// at once), then <see cref="StopAsync"/> or <see cref="DisposeAsync"/>: listeners close, connections still
/// negotiating are dropped, connections in transmission stop reading requests, finish and answer the ones in
/// flight, and close; connections still open after <see cref="NbdServerOptions.StopTimeout"/> (a client that does not
/// read its replies) are closed without their replies; then the devices the server opened are flushed and disposed,
/// and unix socket files removed.</para>
/// <para>Containment: a connection's buffers are bounded and every connection keeps a reserve
/// (<see cref="NbdServerOptions"/> remarks); a watchdog closes connections whose replies go unread for
/// <see cref="NbdServerOptions.SendTimeout"/> and, when set, connections idle for
/// <see cref="NbdServerOptions.IdleTimeout"/>. There is no authentication or TLS: serve unix sockets, or TCP on
/// loopback; TCP on any other address logs a Warning.</para>
/// <para>Thread safety: all members may be called from any thread.</para>
/// </remarks>
public sealed class NbdServer : IAsyncDisposable
{
    private readonly List<ExportHandle> _exports;
    private readonly Dictionary<string, ExportHandle> _byName;
    private readonly NbdServerOptions _options;
    private readonly ILogger _logger;
    private readonly ServerBudget _budget;
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _stopWatchdog = new();
    private readonly ConcurrentDictionary<long, NbdConnection> _connections = new();
    private readonly List<(Socket Socket, Task Loop, string? Path)> _listeners = [];
    private readonly Lock _lock = new();
    private long _nextConnection;
    private Task? _stopped;
    private readonly Task? _watchdog;

    /// <summary>Creates a server for <paramref name="exports"/> (at least one, names unique).</summary>
    public NbdServer(IEnumerable<NbdExport> exports, NbdServerOptions? options = null, ILogger<NbdServer>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(exports);
        _exports = exports.Select(e => new ExportHandle(e)).ToList();
        if (_exports.Count == 0)
        {
            throw new ArgumentException("An NBD server needs at least one export.", nameof(exports));
        }

        _byName = new Dictionary<string, ExportHandle>(StringComparer.Ordinal);
        foreach (ExportHandle export in _exports)
        {
            if (!_byName.TryAdd(export.Name, export))
            {
                throw new ArgumentException($"Export name '{export.Name}' is given twice.", nameof(exports));
            }
        }

        _options = options ?? new NbdServerOptions();
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _budget = new ServerBudget(_options);
        if (_options.SendTimeout > TimeSpan.Zero || _options.IdleTimeout > TimeSpan.Zero)
        {
            _watchdog = Task.Run(WatchAsync);
        }
    }

    /// <summary>How long <see cref="StopAsync"/> still waits for the exports to close after its caller's token fired.</summary>
    public static readonly TimeSpan ExportCloseGrace = TimeSpan.FromSeconds(2);

    /// <summary>True once <see cref="StopAsync"/> was called.</summary>
    public bool IsStopping => _stop.IsCancellationRequested;

    /// <summary>Connections currently open (negotiating or in transmission).</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>Bytes of request and reply buffers currently held by all connections.</summary>
    public long BufferedBytes => _budget.InUse;

    internal IReadOnlyList<ExportHandle> Exports => _exports;

    internal ILogger Logger => _logger;

    /// <summary>Listens on a unix socket at <paramref name="path"/>. A stale socket file (nobody listening) is
    /// replaced; the file is removed when the server stops.</summary>
    /// <exception cref="BlockDriverException">InUse: another server listens there; AlreadyExists: a file that is
    /// not a socket is in the way.</exception>
    public void ListenUnix(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        path = Path.GetFullPath(path);
        if (File.Exists(path) || Directory.Exists(path))
        {
            RemoveStaleSocket(path);
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(512);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        StartListener(socket, path, path);
    }

    /// <summary>Listens on TCP at <paramref name="endpoint"/> (port 0 picks a free port) and returns the bound
    /// endpoint.</summary>
    public IPEndPoint ListenTcp(IPEndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(endpoint);
            socket.Listen(512);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var bound = (IPEndPoint)socket.LocalEndPoint!;
        StartListener(socket, bound.ToString(), null);
        if (!IPAddress.IsLoopback(bound.Address))
        {
            Log.UnauthenticatedTcp(_logger, bound.ToString());
        }

        return bound;
    }

    /// <summary>Stops the server (see the class remarks) and waits until it has stopped. Idempotent.</summary>
    /// <param name="ct">The caller's deadline (a host's shutdown token): when it fires, every connection still open
    /// is closed at once (logged at Warning), and this returns once the exports are closed, or after at most
    /// <see cref="ExportCloseGrace"/> more while they finish closing in the background.</param>
    public async Task StopAsync(CancellationToken ct = default)
    {
        Task stopped;
        lock (_lock)
        {
            _stopped ??= StopCoreAsync();
            stopped = _stopped;
        }

        if (!ct.CanBeCanceled)
        {
            await stopped.ConfigureAwait(false);
            return;
        }

        try
        {
            await stopped.WaitAsync(ct).ConfigureAwait(false);
            return;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested && !stopped.IsCompleted)
        {
            Log.StopCutShort(_logger, AbortAll());
        }

        // Every connection is closed now, so nothing waits for a client any more: give the exports a moment to be
        // flushed and closed before the caller goes on (a host closes the store next).
        await Task.WhenAny(stopped, Task.Delay(ExportCloseGrace, CancellationToken.None)).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    /// <summary>The export named <paramref name="name"/>; the empty name is the first export.</summary>
    internal ExportHandle? FindExport(string name) =>
        name.Length == 0 ? _exports[0] : _byName.GetValueOrDefault(name);

    /// <summary>Serves the transmission phase only (no greeting, simple replies) on a socket whose peer already
    /// knows the export: the kernel's end of a socket pair handed over by <see cref="NbdKernelAttach"/>.
    /// Completes when the peer disconnects or the server stops.</summary>
    internal Task ServeTransmissionAsync(Socket socket, ExportHandle export, IBlockDevice device, string peer)
    {
        var session = new NbdSession(export, device, export.FlagsFor(device, structuredReplies: false), false, 0);
        return Track(new NbdConnection(socket, peer), session);
    }

    private void StartListener(Socket socket, string endpoint, string? path)
    {
        lock (_lock)
        {
            if (_stopped is not null)
            {
                socket.Dispose();
                throw new ObjectDisposedException(nameof(NbdServer));
            }

            _listeners.Add((socket, Task.Run(() => AcceptLoopAsync(socket)), path));
        }

        Log.Listening(_logger, endpoint, string.Join(", ", _exports.Select(e => $"'{e.Name}'")));
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException && _stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e)
            {
                // EMFILE and friends: back off instead of spinning, keep serving the connections we have.
                Log.AcceptFailed(_logger, e);
                await Task.Delay(100).ConfigureAwait(false);
                continue;
            }

            string peer = Describe(client);

            // Counted and added under one lock: with a unix and a TCP listener, two accepts could otherwise both see
            // room for one, and MaxConnections bounds the reserves (ServerBudget).
            bool admitted;
            lock (_lock)
            {
                admitted = _connections.Count < _options.MaxConnections;
                if (admitted)
                {
                    Log.Accepted(_logger, peer);
                    _ = Track(new NbdConnection(client, peer), session: null);
                }
            }

            if (!admitted)
            {
                Log.TooManyConnections(_logger, peer, _options.MaxConnections);
                client.Dispose();
            }
        }
    }

    private Task Track(NbdConnection connection, NbdSession? session)
    {
        long id = Interlocked.Increment(ref _nextConnection);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.Task = Task.Run(async () =>
        {
            await started.Task.ConfigureAwait(false);
            try
            {
                await ServeSocketAsync(connection, session).ConfigureAwait(false);
            }
            finally
            {
                _connections.TryRemove(id, out _);
            }
        });
        _connections[id] = connection;
        started.SetResult();
        return connection.Task;
    }

    // One connection from accept (or socket pair) to close; session is non-null when the handshake was done
    // elsewhere (kernel attach).
    private async Task ServeSocketAsync(NbdConnection connection, NbdSession? session)
    {
        Socket socket = connection.Socket;
        string peer = connection.Peer;
        if (socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
        {
            socket.NoDelay = true;
        }

        var stream = new NetworkStream(socket, ownsSocket: true);
        PipeReader reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 256 * 1024, leaveOpen: true));
        PipeWriter writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024, leaveOpen: true));
        try
        {
            if (session is null)
            {
                using var handshake = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                handshake.CancelAfter(_options.HandshakeTimeout);
                try
                {
                    session = await new NbdHandshake(reader, writer, this, _logger, peer).RunAsync(handshake.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (handshake.IsCancellationRequested && !_stop.IsCancellationRequested)
                {
                    Log.HandshakeTimedOut(_logger, peer);
                    return;
                }
            }

            if (session is not null)
            {
                using var transmission = new NbdTransmission(reader, writer, stream, session, _options, _budget, _logger, peer);
                connection.Transmission = transmission;
                if (connection.IsAborted)
                {
                    // Aborted between the handshake and here: Abort did not see the transmission to break.
                    transmission.Break();
                }

                try
                {
                    await transmission.RunAsync(_stop.Token).ConfigureAwait(false);
                }
                finally
                {
                    connection.Transmission = null;
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Stopping during the handshake: the connection just closes.
        }
        catch (Exception e) when (connection.IsAborted && e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // Closed by the watchdog or by a stop past its deadline (logged there); the socket is gone under the read.
            Log.ReceiveFailed(_logger, peer, e);
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            Log.ReceiveFailed(_logger, peer, e);
        }
        catch (Exception e)
        {
            // The connection's edge: a bug must not take the server down; log it and drop this client.
            Log.ConnectionFailed(_logger, peer, e);
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
            try
            {
                await writer.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                Log.SendFailed(_logger, peer, e);
            }

            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task StopCoreAsync()
    {
        Log.Stopping(_logger, _connections.Count);
        long started = Environment.TickCount64;
        bool stuck = false;
        await _stop.CancelAsync().ConfigureAwait(false);
        List<(Socket Socket, Task Loop, string? Path)> listeners;
        lock (_lock)
        {
            listeners = [.. _listeners];
        }

        foreach ((Socket socket, Task loop, _) in listeners)
        {
            socket.Dispose();
            await loop.ConfigureAwait(false);
        }

        // Connections stop on _stop; wait until each has answered what it had in flight and closed, for at most
        // StopTimeout: a client that does not read its replies would otherwise hold the stop forever. Past it, close
        // them; what is left to wait for then is device requests running, which end without any client.
        if (!await WaitForConnectionsAsync(_options.StopTimeout).ConfigureAwait(false))
        {
            Log.StopDeadlinePassed(_logger, _connections.Count, (Environment.TickCount64 - started) / 1000.0);
            AbortAll();
            if (!await WaitForConnectionsAsync(_options.StopTimeout).ConfigureAwait(false))
            {
                // A device request that does not return: closing its export under it is worse than leaving it open
                // (the process is about to exit or its host to close the store).
                Log.ConnectionsStillRunning(_logger, _connections.Count, _options.StopTimeout.TotalSeconds);
                stuck = true;
            }
        }

        await StopWatchdogAsync().ConfigureAwait(false);
        foreach (ExportHandle export in stuck ? [] : _exports)
        {
            try
            {
                await export.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or BlockDriverException or AggregateException)
            {
                Log.ExportCloseFailed(_logger, export.Name, e);
            }
        }

        foreach ((_, _, string? path) in listeners)
        {
            if (path is not null)
            {
                File.Delete(path);
            }
        }

        Log.Stopped(_logger);
    }

    // True when every connection ended within timeout (TimeSpan.Zero or less: do not wait).
    private async Task<bool> WaitForConnectionsAsync(TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)Math.Max(0, timeout.TotalMilliseconds);
        while (!_connections.IsEmpty)
        {
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return false;
            }

            Task all = Task.WhenAll(_connections.Values.Select(c => c.Task));
            await all.WaitAsync(TimeSpan.FromMilliseconds(left)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (!all.IsCompleted)
            {
                return _connections.IsEmpty;
            }
        }

        return true;
    }

    private int AbortAll()
    {
        int aborted = 0;
        foreach (NbdConnection connection in _connections.Values)
        {
            if (connection.Abort())
            {
                Log.Aborting(_logger, connection.Peer);
                aborted++;
            }
        }

        return aborted;
    }

    // Closes connections whose replies go unread for SendTimeout, or idle for IdleTimeout, checking several times
    // per timeout (at least every second, at most every 50 ms) until the server has stopped.
    private async Task WatchAsync()
    {
        long send = (long)Math.Max(0, _options.SendTimeout.TotalMilliseconds);
        long idle = (long)Math.Max(0, _options.IdleTimeout.TotalMilliseconds);
        long shortest = Math.Min(send > 0 ? send : long.MaxValue, idle > 0 ? idle : long.MaxValue);
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(Math.Clamp(shortest / 5, 50, 1000)));
        try
        {
            while (await timer.WaitForNextTickAsync(_stopWatchdog.Token).ConfigureAwait(false))
            {
                long now = Environment.TickCount64;
                foreach (NbdConnection connection in _connections.Values)
                {
                    if (!connection.IsAborted && connection.Transmission is { } transmission && transmission.CheckTimeouts(now, send, idle))
                    {
                        connection.Abort();
                    }
                }
            }
        }
        catch (OperationCanceledException) when (_stopWatchdog.IsCancellationRequested)
        {
            // The server stopped.
        }
    }

    private async Task StopWatchdogAsync()
    {
        await _stopWatchdog.CancelAsync().ConfigureAwait(false);
        if (_watchdog is { } watchdog)
        {
            await watchdog.ConfigureAwait(false);
        }
    }

    private static void RemoveStaleSocket(string path)
    {
        if (!UnixSocketProbe.IsSocket(path))
        {
            throw new BlockDriverException(ErrorKind.AlreadyExists, $"{path} exists and is not a socket.");
        }

        if (!UnixSocketProbe.IsListening(path))
        {
            // Nobody listens: a socket left behind by a server that died. Replace it.
            File.Delete(path);
            return;
        }

        throw new BlockDriverException(ErrorKind.InUse, $"Another server is listening on {path}.");
    }

    // An IP peer by its address; a unix peer by the socket's fd and, from SO_PEERCRED (socket(7): struct ucred
    // { pid_t pid; uid_t uid; gid_t gid; }, the peer's credentials when it connected), its pid and uid.
    private static string Describe(Socket socket)
    {
        if (socket.RemoteEndPoint is IPEndPoint ip)
        {
            return ip.ToString();
        }

        const int SolSocket = 1, SoPeerCred = 17;
        Span<byte> credentials = stackalloc byte[12];
        try
        {
            if (socket.GetRawSocketOption(SolSocket, SoPeerCred, credentials) == credentials.Length)
            {
                return $"unix:{socket.Handle} (pid {BitConverter.ToInt32(credentials)}, uid {BitConverter.ToUInt32(credentials[4..])})";
            }
        }
        catch (SocketException)
        {
            // Not a socket that knows its peer (a socket pair in some kernels): the fd alone names it.
        }

        return "unix:" + socket.Handle;
    }
}
