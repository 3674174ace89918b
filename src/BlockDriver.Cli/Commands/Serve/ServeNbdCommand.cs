using System.CommandLine;
using System.Globalization;
using System.Net;
using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Nbd;

namespace BlockDriver.Cli.Commands.Serve;

/// <summary><c>serve nbd [--socket PATH] [--tcp HOST:PORT] [--read-only] EXPORT...</c>: an NBD server on a unix
/// socket (default STORE/run/nbd.sock) and, when asked, TCP, until SIGINT or SIGTERM. Each EXPORT is served under
/// its name as given; the first is also the default (empty-name) export.</summary>
internal sealed class ServeNbdCommand : CliCommand
{
    private readonly Option<string?> _socket = new("--socket") { Description = "Unix socket to listen on [default: STORE/run/nbd.sock].", HelpName = "PATH" };
    private readonly Option<string?> _tcp = new("--tcp") { Description = "Also listen on TCP, e.g. 127.0.0.1:10809.", HelpName = "HOST:PORT" };
    private readonly Option<bool> _readOnly = new("--read-only") { Description = "Refuse writes to every export." };
    private readonly Argument<string[]> _exports = new("EXPORT") { Description = "VHDX files to serve.", Arity = ArgumentArity.OneOrMore };

    public ServeNbdCommand()
        : base("nbd", "Serve exports over the Network Block Device protocol until interrupted.")
    {
        Add(_socket);
        Add(_tcp);
        Add(_readOnly);
        Add(_exports);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        string socketPath = Path.GetFullPath(parse.GetValue(_socket) ?? Path.Combine(new StorePaths(StoreCommand.ResolveRoot(parse)).Run, "nbd.sock"));
        IPEndPoint? tcp = parse.GetValue(_tcp) is { } endpoint ? ParseEndpoint(endpoint) : null;
        bool readOnly = parse.GetValue(_readOnly);
        var resolver = new ExportResolver(StoreCommand.ResolveRoot(parse));
        await using (resolver.ConfigureAwait(false))
        {
            IReadOnlyList<ResolvedExport> exports = await resolver.OpenAllAsync(parse.GetValue(_exports)!, readOnly, ct).ConfigureAwait(false);
            using var signal = new TerminationSignal(ct);
            var server = new NbdServer(exports.Select(e => e.Export));
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
