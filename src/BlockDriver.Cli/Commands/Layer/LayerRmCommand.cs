using System.CommandLine;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer rm ID...</c>: removes layers that have no children and that nobody has open.</summary>
internal sealed class LayerRmCommand : StoreCommand
{
    private readonly Argument<string[]> _ids = new("ID") { Description = "The layers to remove, children before parents.", Arity = ArgumentArity.OneOrMore };

    public LayerRmCommand()
        : base("rm", "Remove layers and free their space (refused while a layer has children or is in use).")
    {
        Add(_ids);
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        foreach (string id in parse.GetValue(_ids)!)
        {
            await store.RemoveAsync(id, ct).ConfigureAwait(false);
            Console.WriteLine(id);
        }

        return ExitCodes.Success;
    }
}
