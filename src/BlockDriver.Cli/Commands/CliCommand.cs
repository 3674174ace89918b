using System.CommandLine;

namespace BlockDriver.Cli.Commands;

/// <summary>A leaf command: subclasses declare their arguments and options in the constructor and implement
/// <see cref="ExecuteAsync"/>. This class is the command-line edge: every exception the command lets escape is
/// printed by <see cref="CliError"/> as one line and turned into <see cref="FailureExitCode"/>.</summary>
internal abstract class CliCommand : Command
{
    protected CliCommand(string name, string description)
        : base(name, description)
    {
        SetAction(RunAsync);
    }

    /// <summary>The exit code for an error, including a usage error found while parsing.</summary>
    public virtual int FailureExitCode => ExitCodes.Failure;

    /// <summary>Runs the command and returns its exit code.</summary>
    protected abstract Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct);

    private async Task<int> RunAsync(ParseResult parse, CancellationToken ct)
    {
        try
        {
            return await ExecuteAsync(parse, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            CliError.Write("interrupted.");
            return ExitCodes.Cancelled;
        }
        catch (Exception e)
        {
            CliError.Write(CliError.Describe(e));
            return FailureExitCode;
        }
    }
}
