using System.CommandLine;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands;

/// <summary>A leaf command that works on a store: the global <c>--root</c> option (or BLOCKDRIVER_ROOT, or
/// ./.blockdriver) picks it, and whatever reconciliation repaired when opening it is reported on stderr.</summary>
internal abstract class StoreCommand : CliCommand
{
    /// <summary>The environment variable naming the store when --root is not given.</summary>
    public const string RootVariable = "BLOCKDRIVER_ROOT";

    /// <summary>The embedded default store, relative to the working directory.</summary>
    public const string DefaultRoot = ".blockdriver";

    /// <summary>The global option, added once to the root command (recursive, so every command accepts it).</summary>
    public static readonly Option<string?> RootOption = new("--root")
    {
        Description = $"The store directory [default: ${RootVariable}, else ./{DefaultRoot}].",
        HelpName = "DIR",
        Recursive = true,
    };

    protected StoreCommand(string name, string description)
        : base(name, description)
    {
    }

    /// <summary>True for commands that make the store when it does not exist yet (creating a layer does).</summary>
    protected virtual bool CreatesStore => false;

    /// <summary>Checks the arguments before the store is opened (and possibly created), so that bad input changes
    /// nothing. Throws on a bad argument.</summary>
    protected virtual void CheckArguments(ParseResult parse)
    {
    }

    /// <summary>Runs with the opened store.</summary>
    protected abstract Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct);

    /// <summary>The store directory the command line selects.</summary>
    public static string ResolveRoot(ParseResult parse) =>
        parse.GetValue(RootOption)
        ?? (Environment.GetEnvironmentVariable(RootVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment : DefaultRoot);

    protected sealed override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        CheckArguments(parse);
        LayerStore store = await LayerStore.OpenAsync(ResolveRoot(parse), CreatesStore, ct).ConfigureAwait(false);
        await using (store.ConfigureAwait(false))
        {
            foreach (ReconcileAction action in store.Reconciliation)
            {
                bool repaired = !action.Action.StartsWith("reported", StringComparison.Ordinal);
                Console.Error.WriteLine($"blockdriver: {(repaired ? "repaired" : "warning")}: {action}");
            }

            return await ExecuteAsync(store, parse, ct).ConfigureAwait(false);
        }
    }
}
