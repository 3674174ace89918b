using System.CommandLine;
using BlockDriver.Daemon;

namespace BlockDriver.Cli.Commands.Daemon;

/// <summary><c>daemon [--config FILE] [--Key=value...]</c>: runs the store's daemon in the foreground (as systemd
/// runs services: no forking) until SIGTERM or SIGINT, then unmounts everything it mounted and exits.</summary>
/// <remarks>A synchronous action on purpose: System.CommandLine gives asynchronous actions 2 s after a signal before
/// it returns from Main, which would end the process in the middle of unmounting. Here the host's own console
/// lifetime handles the signals and <c>Run</c> returns only when the teardown is done.</remarks>
internal sealed class DaemonCommand : Command
{
    private readonly Option<string?> _config = new("--config")
    {
        Description = $"Configuration file [default: STORE/{DaemonHost.DefaultConfigFile} if it exists].",
        HelpName = "FILE",
    };

    private readonly Option<bool> _docker = new("--docker")
    {
        Description = "Serve the Docker graphdriver plugin (sets Docker:Enabled=true; socket /run/docker/plugins/blockdriver.sock unless Docker:Socket says otherwise).",
    };

    private readonly Option<string?> _containerdSocket = new("--containerd-socket")
    {
        Description = "Serve the containerd snapshotter on this socket (sets Containerd:Socket).",
        HelpName = "PATH",
    };

    public DaemonCommand()
        : base("daemon", "Run the store's daemon in the foreground: the admin API for mount, umount and ps (and NBD, the Docker plugin and the containerd snapshotter when configured). Settings: --config FILE, BLOCKDRIVER_* variables, --Key=value.")
    {
        Add(_config);
        Add(_docker);
        Add(_containerdSocket);
        TreatUnmatchedTokensAsErrors = false;
        SetAction(Run);
    }

    private int Run(ParseResult parse)
    {
        try
        {
            var settings = new List<string>();
            foreach (string token in parse.UnmatchedTokens)
            {
                if (!token.StartsWith("--", StringComparison.Ordinal) || !token.Contains('=', StringComparison.Ordinal))
                {
                    CliError.Write($"daemon: unexpected argument '{token}': settings are given as --Key=value (e.g. --Remount=false).");
                    return ExitCodes.Failure;
                }

                settings.Add(token);
            }

            // The switches are shorthands for settings, given after the --Key=value ones so that they win.
            if (parse.GetValue(_docker))
            {
                settings.Add("--Docker:Enabled=true");
            }

            if (parse.GetValue(_containerdSocket) is { Length: > 0 } containerd)
            {
                settings.Add($"--Containerd:Socket={Path.GetFullPath(containerd)}");
            }

            using Microsoft.AspNetCore.Builder.WebApplication app = DaemonHost.Build(StoreCommand.ResolveRoot(parse), parse.GetValue(_config), settings, DaemonModules.All);
            app.Run();
            return ExitCodes.Success;
        }
        catch (Exception e)
        {
            CliError.Write(CliError.Describe(e));
            return ExitCodes.Failure;
        }
    }
}
