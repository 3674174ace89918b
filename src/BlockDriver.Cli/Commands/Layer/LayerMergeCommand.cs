using System.CommandLine;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer merge ID</c>: folds ID's parent into ID (the parent must have no other child).</summary>
internal sealed class LayerMergeCommand : StoreCommand
{
    private readonly Argument<string> _id = LayerOptions.Id("The layer whose parent is merged into it.");

    public LayerMergeCommand()
        : base("merge", "Merge a layer with its parent (which must have no other children): one layer with the same id and content remains.")
    {
        Add(_id);
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        Core.Layer layer = await store.MergeAsync(parse.GetValue(_id)!, ct).ConfigureAwait(false);
        Console.WriteLine(layer.Id);
        return ExitCodes.Success;
    }
}
