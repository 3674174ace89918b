using System.CommandLine;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer flatten ID</c>: rewrites ID as a standalone base layer with the same content.</summary>
internal sealed class LayerFlattenCommand : StoreCommand
{
    private readonly Argument<string> _id = LayerOptions.Id("The layer to flatten.");

    public LayerFlattenCommand()
        : base("flatten", "Flatten a layer into a standalone base with the same content (its children stay valid).")
    {
        Add(_id);
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        Core.Layer layer = await store.FlattenAsync(parse.GetValue(_id)!, ct).ConfigureAwait(false);
        Console.WriteLine(layer.Id);
        return ExitCodes.Success;
    }
}
