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
/// flight, and close; then the devices the server opened are flushed and disposed, and unix socket files removed.</para>
/// <para>Thread safety: all members may be called from any thread.</para>
/// </remarks>
public sealed class NbdServer : IAsyncDisposable
{
    private readonly List<ExportHandle> _exports;
    private readonly Dictionary<string, ExportHandle> _byName;
    private readonly NbdServerOptions _options;
    private readonly ILogger _logger;
    private readonly ByteBudget _budget;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<long, Task> _connections = new();
    private readonly List<(Socket Socket, Task Loop, string? Path)> _listeners = [];
    private readonly Lock _lock = new();
    private long _nextConnection;
    private Task? _stopped;

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
        _budget = new ByteBudget(Math.Max(_options.MaxBufferedBytes, NbdLimits.MaxPayload));
    }

    /// <summary>True once <see cref="StopAsync"/> was called.</summary>
    public bool IsStopping => _stop.IsCancellationRequested;

    /// <summary>Connections currently open (negotiating or in transmission).</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>Bytes of request and reply buffers currently held by all connections.</summary>
    public long BufferedBytes => _budget.Capacity - _budget.Available;

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
        return bound;
    }

    /// <summary>Stops the server (see the class remarks) and waits until it has stopped. Idempotent.</summary>
    public Task StopAsync()
    {
        lock (_lock)
        {
            _stopped ??= StopCoreAsync();
            return _stopped;
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    /// <summary>The export named <paramref name="name"/>; the empty name is the first export.</summary>
    internal ExportHandle? FindExport(string name) =>
        name.Length == 0 ? _exports[0] : _byName.GetValueOrDefault(name);

    /// <summary>Serves the transmission phase only (no greeting, simple replies) on a socket whose peer already
    /// knows the export: the kernel's end of a socket pair handed over by <see cref="NbdKernelAttach"/>.
    /// Completes when the peer disconnects or the server stops.</summary>
    internal Task ServeTransmissionAsync(Socket socket, ExportHandle export, IBlockDevice device, string peer) =>
        Track(async () =>
        {
            var session = new NbdSession(export, device, export.FlagsFor(device, structuredReplies: false), false, 0);
            await ServeSocketAsync(socket, peer, session).ConfigureAwait(false);
        });

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
            if (_connections.Count >= _options.MaxConnections)
            {
                Log.TooManyConnections(_logger, peer, _options.MaxConnections);
                client.Dispose();
                continue;
            }

            Log.Accepted(_logger, peer);
            _ = Track(() => ServeSocketAsync(client, peer, session: null));
        }
    }

    private Task Track(Func<Task> serve)
    {
        long id = Interlocked.Increment(ref _nextConnection);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task task = Task.Run(async () =>
        {
            await started.Task.ConfigureAwait(false);
            try
            {
                await serve().ConfigureAwait(false);
            }
            finally
            {
                _connections.TryRemove(id, out _);
            }
        });
        _connections[id] = task;
        started.SetResult();
        return task;
    }

    // One connection from accept (or socket pair) to close; session is non-null when the handshake was done
    // elsewhere (kernel attach).
    private async Task ServeSocketAsync(Socket socket, string peer, NbdSession? session)
    {
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
                await transmission.RunAsync(_stop.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Stopping during the handshake: the connection just closes.
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

        // Connections stop on _stop; wait until each has answered what it had in flight and closed.
        while (!_connections.IsEmpty)
        {
            await Task.WhenAll(_connections.Values).ConfigureAwait(false);
        }

        foreach (ExportHandle export in _exports)
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

    private static string Describe(Socket socket) => socket.RemoteEndPoint switch
    {
        IPEndPoint ip => ip.ToString(),
        _ => "unix:" + socket.Handle,
    };
}
