using System.CommandLine;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer revert ID SNAPID</c>: discards what a writable layer holds and makes it read as SNAPID.</summary>
internal sealed class LayerRevertCommand : StoreCommand
{
    private readonly Argument<string> _id = LayerOptions.Id("The writable layer.");
    private readonly Argument<string> _snapshot = new("SNAPID") { Description = "The sealed layer (usually a snapshot of ID) to go back to." };

    public LayerRevertCommand()
        : base("revert", "Revert a writable layer to a snapshot, discarding the changes made since.")
    {
        Add(_id);
        Add(_snapshot);
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        Core.Layer layer = await store.RevertAsync(parse.GetValue(_id)!, parse.GetValue(_snapshot)!, ct).ConfigureAwait(false);
        Console.WriteLine(layer.Id);
        return ExitCodes.Success;
    }
}
