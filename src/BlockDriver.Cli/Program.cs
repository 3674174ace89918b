using System.CommandLine;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using BlockDriver.Cli.Commands;
using BlockDriver.Cli.Commands.Daemon;
using BlockDriver.Cli.Commands.Img;
using BlockDriver.Cli.Commands.Layer;
using BlockDriver.Cli.Commands.Serve;
using BlockDriver.Cli.Commands.Store;

namespace BlockDriver.Cli;

/// <summary>The <c>blockdriver</c> entry point: builds the command tree and runs it. Each command group is one
/// <see cref="Command"/> subclass (a folder under Commands/), each leaf command one file.</summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        ParseResult parse = CreateRootCommand().Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            return ReportUsageErrors(parse);
        }

        return await parse.InvokeAsync().ConfigureAwait(false);
    }

    /// <summary>Builds the root command with every command group.</summary>
    public static RootCommand CreateRootCommand() =>
        new("blockdriver: block-level snapshot storage on VHDX layers.")
        {
            StoreCommand.RootOption,
            new ImgCommand(),
            new LayerCommand(),
            new DfCommand(),
            new PlanCommand(),
            new StoreGroupCommand(),
            new ServeCommand(),
            new AttachNbdCommand(),
            new DaemonCommand(),
            new MountCommand(),
            new UmountCommand(),
            new PsCommand(),
        };

    // Usage errors in the same one-line form as every other error, qemu-img style, rather than System.CommandLine's
    // default of the errors followed by the whole help text. Commands whose exit code 1 means something else
    // (img compare: "different") give their own error code.
    private static int ReportUsageErrors(ParseResult parse)
    {
        foreach (string message in parse.Errors.Select(e => e.Message).Distinct())
        {
            CliError.Write(message);
        }

        var names = new List<string>();
        for (SymbolResult? result = parse.CommandResult; result is CommandResult command; result = command.Parent)
        {
            names.Insert(0, command.Command.Name);
        }

        Console.Error.WriteLine($"Try '{string.Join(' ', names)} --help' for more information.");
        return parse.CommandResult.Command is CliCommand leaf ? leaf.FailureExitCode : ExitCodes.Failure;
    }
}
