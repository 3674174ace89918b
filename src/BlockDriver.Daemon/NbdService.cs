using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Nbd;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BlockDriver.Daemon;

/// <summary>The daemon's optional NBD server (<see cref="DaemonNbdOptions"/>): started after the store, stopped
/// before it. Each export opens its layer on a client's first request; the server flushes and closes them when it
/// stops.</summary>
public sealed class NbdService : IHostedService, IAsyncDisposable
{
    private readonly DaemonOptions _options;
    private readonly StoreService _store;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger<NbdService> _logger;
    private NbdServer? _server;

    /// <summary>Created by the host.</summary>
    public NbdService(IOptions<DaemonOptions> options, StoreService store, ILoggerFactory loggers)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggers);
        _options = options.Value;
        _store = store;
        _loggers = loggers;
        _logger = loggers.CreateLogger<NbdService>();
    }

    /// <summary>The socket the server listens on, or null when none is configured.</summary>
    public string? SocketPath => _options.Nbd.Socket is { Length: > 0 } socket ? Path.GetFullPath(socket, _store.Root) : null;

    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (SocketPath is not { } socket)
        {
            return Task.CompletedTask;
        }

        if (_options.Nbd.Exports.Count == 0)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, "Nbd:Socket is set but Nbd:Exports names no layer.");
        }

        LayerStore store = _store.Store;
        var exports = new List<NbdExport>();
        foreach (string id in _options.Nbd.Exports)
        {
            Layer layer = store.Get(id);
            bool writable = !_options.Nbd.ReadOnly && !layer.IsSealed;
            exports.Add(new NbdExport(id, async ct => await store.OpenLayerAsync(id, writable, ct).ConfigureAwait(false))
            {
                Description = $"{layer.Kind.ToString().ToLowerInvariant()} layer {id}",
                ReadOnly = !writable,
            });
        }

        var options = new NbdServerOptions { SendTimeout = _options.Nbd.SendTimeout, IdleTimeout = _options.Nbd.IdleTimeout };
        _server = new NbdServer(exports, options, _loggers.CreateLogger<NbdServer>());
        Directory.CreateDirectory(Path.GetDirectoryName(socket)!);
        _server.ListenUnix(socket);
        Log.NbdListening(_logger, _store.Root, socket, string.Join(", ", _options.Nbd.Exports));
        return Task.CompletedTask;
    }

    /// <summary>Stops the server: connections get <see cref="NbdServerOptions.StopTimeout"/> to answer what they have in
    /// flight, then are closed; when the host's <paramref name="cancellationToken"/> fires first (its ShutdownTimeout),
    /// every connection is closed at once and this returns.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is { } server)
        {
            _server = null;
            await server.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Stops the server (idempotent).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_server is { } server)
        {
            _server = null;
            await server.DisposeAsync().ConfigureAwait(false);
        }
    }
}
