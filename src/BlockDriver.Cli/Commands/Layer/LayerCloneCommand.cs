using System.CommandLine;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer clone ID [--id NEWID]</c>: a new writable container layer over sealed ID; prints its id.</summary>
internal sealed class LayerCloneCommand : StoreCommand
{
    private readonly Argument<string> _id = LayerOptions.Id("The sealed layer to clone.");
    private readonly Option<string?> _newId = new("--id") { Description = "The clone's id [default: generated].", HelpName = "NEWID" };

    public LayerCloneCommand()
        : base("clone", "Clone a sealed layer: a new writable child that starts with its content.")
    {
        Add(_id);
        Add(_newId);
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        Core.Layer layer = await store.CloneAsync(parse.GetValue(_id)!, parse.GetValue(_newId), ct).ConfigureAwait(false);
        Console.WriteLine(layer.Id);
        return ExitCodes.Success;
    }
}
