using BlockDriver.Abstractions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BlockDriver.Daemon;

/// <summary>Builds the daemon's host: configuration (defaults, JSON file, <c>BLOCKDRIVER_</c> environment,
/// <c>--Key=value</c> arguments), console logging (one line per message, levels from the <c>Logging</c> section),
/// the <see cref="StoreService"/>, the optional <see cref="NbdService"/>, and Kestrel serving <see cref="AdminApi"/>
/// on STORE/run/admin.sock. The host's console lifetime stops it on SIGTERM, SIGINT or SIGQUIT: the admin API stops
/// first, then the NBD server, then the store service unmounts everything.</summary>
public static class DaemonHost
{
    /// <summary>The prefix of the environment variables the daemon reads (<c>BLOCKDRIVER_Remount=false</c>).</summary>
    public const string EnvironmentPrefix = "BLOCKDRIVER_";

    /// <summary>The configuration file's name in the store when <c>--config</c> is not given.</summary>
    public const string DefaultConfigFile = "daemon.json";

    /// <summary>The thread pool's minimum worker count in the daemon (the runtime's default is one per core).</summary>
    public const int MinPoolThreads = 32;

    /// <summary>Builds the host for the store at <paramref name="root"/>; run it with <c>Run()</c> or
    /// <c>RunAsync()</c>, which return once it stopped.</summary>
    /// <param name="root">The store directory (made if missing).</param>
    /// <param name="configFile">A configuration file that must exist, or null for STORE/daemon.json if it exists.</param>
    /// <param name="args"><c>--Key=value</c> settings, applied last.</param>
    /// <param name="modules">Front ends the host may serve (the Docker plugin, the containerd snapshotter); each
    /// registers itself when its configuration section enables it.</param>
    /// <exception cref="BlockDriverException">InvalidArgument for a missing or malformed configuration file.</exception>
    public static WebApplication Build(string root, string? configFile, IReadOnlyList<string> args, IReadOnlyList<IDaemonModule>? modules = null)
    {
        ArgumentNullException.ThrowIfNull(root);
        ArgumentNullException.ThrowIfNull(args);
        string fullRoot = Path.GetFullPath(root);

        // The FUSE server's request handlers finish on the thread pool, and the layer content operations (tar apply,
        // diff) do blocking file I/O on mounted layers from pool threads: I/O that waits for those very handlers. With
        // the default minimum (a thread per core) a few such calls exhaust the pool, which then grows by about one
        // thread a second. Blocking kernel calls of the mounter run on threads of their own (KernelCall).
        ThreadPool.GetMinThreads(out int workers, out int completions);
        _ = ThreadPool.SetMinThreads(Math.Max(workers, MinPoolThreads), completions);
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "blockdriver", ContentRootPath = Environment.CurrentDirectory });
        ConfigurationManager config = builder.Configuration;
        config.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Logging:LogLevel:Default"] = "Information",
            ["Logging:LogLevel:Microsoft"] = "Warning",

            // A failed start is reported once, as the command's error line, not also as a logged stack trace.
            ["Logging:LogLevel:Microsoft.Extensions.Hosting.Internal.Host"] = "None",
        });
        string file = configFile is null ? Path.Combine(fullRoot, DefaultConfigFile) : Path.GetFullPath(configFile);
        if (configFile is not null && !File.Exists(file))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"--config {configFile}: no such file.");
        }

        try
        {
            config.AddJsonFile(file, optional: true, reloadOnChange: false);
        }
        catch (InvalidDataException ex)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"{file}: {ex.Message} {ex.InnerException?.Message}".TrimEnd(), ex);
        }

        config.AddEnvironmentVariables(EnvironmentPrefix);
        try
        {
            config.AddCommandLine([.. args]);
        }
        catch (FormatException ex)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"daemon settings: {ex.Message} (use --Key=value).", ex);
        }

        // The store is the command line's --root (or BLOCKDRIVER_ROOT, which the CLI read already), whatever a
        // setting says: the file that could say otherwise lives in the store.
        config.AddInMemoryCollection(new Dictionary<string, string?> { [nameof(DaemonOptions.Root)] = fullRoot });

        builder.Logging.AddConfiguration(config.GetSection("Logging"));
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.IncludeScopes = false;
        });

        var options = new DaemonOptions();
        try
        {
            config.Bind(options);
        }
        catch (InvalidOperationException ex)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"daemon settings: {ex.Message}", ex);
        }

        builder.Services.AddOptions<DaemonOptions>().Bind(config);
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownTimeout);

        // Hosted services start in this order, before Kestrel; they stop after it, in reverse order.
        builder.Services.AddSingleton<StoreService>();
        builder.Services.AddHostedService(s => s.GetRequiredService<StoreService>());
        builder.Services.AddSingleton<NbdService>();
        builder.Services.AddHostedService(s => s.GetRequiredService<NbdService>());
        builder.Services.AddSingleton<AdminApi>();
        foreach (IDaemonModule module in modules ?? [])
        {
            module.Configure(builder);
        }

        string socket = AdminEndpoint.SocketPath(fullRoot);
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;

            // POST /v1/layers/ID/apply carries a whole layer tar.
            k.Limits.MaxRequestBodySize = null;
            k.ListenUnixSocket(socket, l => l.Protocols = HttpProtocols.Http1);
        });

        WebApplication app = builder.Build();
        AdminApi api = app.Services.GetRequiredService<AdminApi>();
        app.Run(context => api.HandleAsync(context));
        return app;
    }
}
