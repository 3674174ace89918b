using BlockDriver.Daemon;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BlockDriver.Containerd;

/// <summary>
/// The containerd snapshotter's socket: gRPC over HTTP/2 (plaintext, as containerd's proxy client dials) on
/// <see cref="ContainerdOptions.Socket"/>, serving <see cref="SnapshotsService"/> over the
/// <see cref="ContainerdService"/>'s snapshotter.
/// </summary>
public sealed class ContainerdFrontEnd(ContainerdService service, IOptions<ContainerdOptions> options, ILoggerFactory loggers)
    : SocketFrontEnd(SocketOf(options), HttpProtocols.Http2, loggers)
{
    /// <inheritdoc/>
    protected override string Name => "containerd snapshotter";

    /// <summary>The socket <paramref name="options"/> configure: <see cref="ContainerdOptions.Socket"/>, else
    /// <see cref="ContainerdOptions.DefaultSocket"/>.</summary>
    public static string SocketOf(IOptions<ContainerdOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Value.Socket is { Length: > 0 } socket ? socket : ContainerdOptions.DefaultSocket;
    }

    /// <inheritdoc/>
    protected override void ConfigureServices(IServiceCollection services)
    {
        services.AddGrpc(o =>
        {
            // containerd's proxy client allows 16 MiB messages each way.
            o.MaxReceiveMessageSize = 16 << 20;
            o.MaxSendMessageSize = 16 << 20;
        });
        services.AddSingleton(service.Snapshotter);
    }

    /// <inheritdoc/>
    protected override void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGrpcService<SnapshotsService>();
    }
}
