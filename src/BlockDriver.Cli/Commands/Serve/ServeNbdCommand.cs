using System.CommandLine;
using System.Globalization;
using System.Net;
using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Nbd;
using Microsoft.Extensions.Logging;

namespace BlockDriver.Cli.Commands.Serve;

/// <summary><c>serve nbd [--socket PATH] [--tcp HOST:PORT] [--read-only] [--send-timeout T] [--idle-timeout T]
/// EXPORT...</c>: an NBD server on a unix socket (default STORE/run/nbd.sock) and, when asked, TCP, until SIGINT or
/// SIGTERM. Each EXPORT is served under its name as given; the first is also the default (empty-name) export. The
/// server's warnings (a client closed for not reading its replies, TCP beyond loopback) go to stderr.</summary>
internal sealed class ServeNbdCommand : CliCommand
{
    private readonly Option<string?> _socket = new("--socket") { Description = "Unix socket to listen on [default: STORE/run/nbd.sock].", HelpName = "PATH" };
    private readonly Option<string?> _tcp = new("--tcp") { Description = "Also listen on TCP, e.g. 127.0.0.1:10809.", HelpName = "HOST:PORT" };
    private readonly Option<bool> _readOnly = new("--read-only") { Description = "Refuse writes to every export." };
    private readonly Option<string?> _sendTimeout = new("--send-timeout") { Description = "Close a connection whose client has not read a reply for this long; 0: never [default: 30s].", HelpName = "TIME" };
    private readonly Option<string?> _idleTimeout = new("--idle-timeout") { Description = "Close a connection that sent no request for this long [default: 0, never].", HelpName = "TIME" };
    private readonly Argument<string[]> _exports = new("EXPORT") { Description = "VHDX files to serve.", Arity = ArgumentArity.OneOrMore };

    public ServeNbdCommand()
        : base("nbd", "Serve exports over the Network Block Device protocol until interrupted.")
    {
        Add(_socket);
        Add(_tcp);
        Add(_readOnly);
        Add(_sendTimeout);
        Add(_idleTimeout);
        Add(_exports);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        string socketPath = Path.GetFullPath(parse.GetValue(_socket) ?? Path.Combine(new StorePaths(StoreCommand.ResolveRoot(parse)).Run, "nbd.sock"));
        IPEndPoint? tcp = parse.GetValue(_tcp) is { } endpoint ? ParseEndpoint(endpoint) : null;
        bool readOnly = parse.GetValue(_readOnly);
        var options = new NbdServerOptions();
        options = options with
        {
            SendTimeout = parse.GetValue(_sendTimeout) is { } send ? ParseDuration("--send-timeout", send) : options.SendTimeout,
            IdleTimeout = parse.GetValue(_idleTimeout) is { } idle ? ParseDuration("--idle-timeout", idle) : options.IdleTimeout,
        };
        var resolver = new ExportResolver(StoreCommand.ResolveRoot(parse));
        await using (resolver.ConfigureAwait(false))
        {
            IReadOnlyList<ResolvedExport> exports = await resolver.OpenAllAsync(parse.GetValue(_exports)!, readOnly, ct).ConfigureAwait(false);
            using var signal = new TerminationSignal(ct);
            using ILoggerFactory loggers = LoggerFactory.Create(b =>
            {
                b.SetMinimumLevel(LogLevel.Warning);
                b.AddSimpleConsole(o => o.SingleLine = true);
                b.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            });
            var server = new NbdServer(exports.Select(e => e.Export), options, loggers.CreateLogger<NbdServer>());
            await using (server.ConfigureAwait(false))
            {
                Directory.CreateDirectory(Path.GetDirectoryName(socketPath)!);
                server.ListenUnix(socketPath);
                var uris = new List<string> { $"nbd+unix:///?socket={socketPath}" };
                if (tcp is not null)
                {
                    IPEndPoint bound = server.ListenTcp(tcp);
                    uris.Add($"nbd://{bound}/");
                }

                foreach (ResolvedExport e in exports)
                {
                    Console.WriteLine($"export {e.Export.Name}: {e.Device.Length} bytes{(e.Export.ReadOnly ? ", read-only" : "")}");
                }

                foreach (string uri in uris)
                {
                    Console.WriteLine($"listening: {uri}");
                }

                await signal.WaitAsync().ConfigureAwait(false);
                Console.WriteLine("stopping");
            }
        }

        Console.WriteLine("stopped");
        return ExitCodes.Success;
    }

    /// <summary>A duration: a number with the unit ms, s, m or h (<c>500ms</c>, <c>30s</c>, <c>10m</c>), a number of
    /// seconds (<c>30</c>), or <c>0</c> for never.</summary>
    internal static TimeSpan ParseDuration(string option, string text)
    {
        string t = text.Trim();
        (string number, double unit) = t switch
        {
            _ when t.EndsWith("ms", StringComparison.Ordinal) => (t[..^2], 0.001),
            _ when t.EndsWith('s') => (t[..^1], 1),
            _ when t.EndsWith('m') => (t[..^1], 60),
            _ when t.EndsWith('h') => (t[..^1], 3600),
            _ => (t, 1),
        };
        if (!double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value)
            || value * unit > TimeSpan.FromDays(1).TotalSeconds)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"{option} {text}: expected a duration such as 30s, 500ms, 10m or 0 (never), of at most a day.");
        }

        return TimeSpan.FromSeconds(value * unit);
    }

    /// <summary>HOST:PORT with a literal address ([::1]:10809, 127.0.0.1:10809) or a host name (localhost:10809).</summary>
    internal static IPEndPoint ParseEndpoint(string text)
    {
        if (IPEndPoint.TryParse(text, out IPEndPoint? literal) && literal.Port != 0 && text.Contains(':', StringComparison.Ordinal))
        {
            return literal;
        }

        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"--tcp {text}: expected HOST:PORT with a port from 1 to 65535.");
        }

        IPAddress[] addresses = Dns.GetHostAddresses(text[..colon]);
        if (addresses.Length == 0)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"--tcp {text}: host not found.");
        }

        return new IPEndPoint(addresses[0], port);
    }
}
