using BlockDriver.Abstractions;
using BlockDriver.Interop;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BlockDriver.Daemon;

/// <summary>
/// A hosted service that serves one protocol on a unix socket of its own, with a Kestrel server separate from the
/// admin API's (so each socket has its own HTTP version, services and routes). Start refuses a socket a live
/// server answers on, replaces a stale one, and sets the new one's mode to 0600 (root only); stop closes the server
/// and removes the socket.
/// </summary>
/// <param name="socketPath">The socket's absolute path; its directory is created if missing.</param>
/// <param name="protocols">HTTP/1.1 for JSON APIs, HTTP/2 for gRPC.</param>
/// <param name="loggers">The daemon's loggers; the front end's server logs through them.</param>
public abstract class SocketFrontEnd(string socketPath, HttpProtocols protocols, ILoggerFactory loggers) : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    /// <summary>The socket this front end listens on.</summary>
    public string SocketPath { get; } = Path.GetFullPath(socketPath ?? throw new ArgumentNullException(nameof(socketPath)));

    /// <summary>A short name for messages, such as "Docker plugin".</summary>
    protected abstract string Name { get; }

    /// <inheritdoc/>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(SocketPath)!);
        RemoveStaleSocket();

        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "blockdriver" });
        builder.Services.AddSingleton(loggers);
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;

            // Layer tars (Docker's ApplyDiff) are as large as layers; the protocols bound their own messages.
            k.Limits.MaxRequestBodySize = null;
            k.ListenUnixSocket(SocketPath, l => l.Protocols = protocols);
        });
        ConfigureServices(builder.Services);
        WebApplication app = builder.Build();
        Map(app);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        _app = app;
        File.SetUnixFileMode(SocketPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Log.FrontEndListening(loggers.CreateLogger(GetType()), Name, SocketPath);
    }

    /// <inheritdoc/>
    public async Task StopAsync(CancellationToken cancellationToken) => await DisposeAsync().ConfigureAwait(false);

    /// <summary>Stops the server and removes its socket (idempotent).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
            File.Delete(SocketPath);
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>Adds the services the front end's handlers need (gRPC, for example) to its own server.</summary>
    protected virtual void ConfigureServices(IServiceCollection services)
    {
    }

    /// <summary>Maps the front end's endpoints or handler on its server.</summary>
    protected abstract void Map(WebApplication app);

    // A socket file nobody answers on is a dead process's; one that answers belongs to a live server, perhaps another
    // store's daemon, and is not taken over.
    private void RemoveStaleSocket()
    {
        if (!File.Exists(SocketPath))
        {
            return;
        }

        if (UnixSocketProbe.IsListening(SocketPath))
        {
            throw new BlockDriverException(ErrorKind.InUse, $"{Name}: another server is listening on {SocketPath}.");
        }

        Log.StaleSocketFound(loggers.CreateLogger(GetType()), SocketPath);

        File.Delete(SocketPath);
    }
}
