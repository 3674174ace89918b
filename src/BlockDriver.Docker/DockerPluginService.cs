using BlockDriver.Daemon;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace BlockDriver.Docker;

/// <summary>The hosted service serving <see cref="PluginApi"/> on the plugin's socket (HTTP/1.1, mode 0600, removed
/// at stop; see <see cref="SocketFrontEnd"/>). It starts after the daemon's store and stops before it, so a call in
/// flight finishes before the store unmounts everything.</summary>
public sealed class DockerPluginService : SocketFrontEnd
{
    private readonly PluginApi _api;
    private readonly DockerOptions _options;
    private readonly ILogger<DockerPluginService> _logger;

    /// <summary>Created by the host.</summary>
    public DockerPluginService(DockerOptions options, GraphDriver driver, ILoggerFactory loggers)
        : base((options ?? throw new ArgumentNullException(nameof(options))).SocketPath, HttpProtocols.Http1, loggers)
    {
        ArgumentNullException.ThrowIfNull(driver);
        ArgumentNullException.ThrowIfNull(loggers);
        _options = options;
        _logger = loggers.CreateLogger<DockerPluginService>();
        Driver = driver;
        _api = new PluginApi(Driver, loggers.CreateLogger<PluginApi>());
    }

    /// <summary>The operations behind the API.</summary>
    public GraphDriver Driver { get; }

    /// <inheritdoc/>
    protected override string Name => $"Docker graphdriver plugin {_options.Name}";

    /// <inheritdoc/>
    protected override void Map(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.Run(_api.HandleAsync);
        Log.Serving(_logger, _options.Name, SocketPath);
    }
}
