using System.CommandLine;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer label ID KEY=VALUE... [--rm KEY]...</c>: sets or removes labels.</summary>
internal sealed class LayerLabelCommand : StoreCommand
{
    private readonly Argument<string> _id = LayerOptions.Id();
    private readonly Argument<string[]> _set = new("KEY=VALUE") { Description = "Labels to set.", Arity = ArgumentArity.ZeroOrMore };
    private readonly Option<string[]> _remove = new("--rm") { Description = "A label to remove (repeatable).", HelpName = "KEY" };

    public LayerLabelCommand()
        : base("label", "Set or remove labels of a layer.")
    {
        Add(_id);
        Add(_set);
        Add(_remove);
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        var changes = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach ((string key, string value) in LayerOptions.ParseLabels(parse.GetValue(_set)))
        {
            changes[key] = value;
        }

        foreach (string key in parse.GetValue(_remove) ?? [])
        {
            changes[key] = null;
        }

        await store.UpdateLabelsAsync(parse.GetValue(_id)!, changes, ct).ConfigureAwait(false);
        return ExitCodes.Success;
    }
}
