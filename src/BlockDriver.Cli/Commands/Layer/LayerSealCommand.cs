using System.CommandLine;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer seal ID [--as NEWID]</c>: the layer becomes a sealed image layer; prints its id.</summary>
internal sealed class LayerSealCommand : StoreCommand
{
    private readonly Argument<string> _id = LayerOptions.Id("The writable layer to seal.");
    private readonly Option<string?> _as = new("--as") { Description = "Seal it under this new id.", HelpName = "NEWID" };

    public LayerSealCommand()
        : base("seal", "Seal a writable layer (commit): its bytes never change again and it can be a parent.")
    {
        Add(_id);
        Add(_as);
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        Core.Layer layer = await store.SealAsync(parse.GetValue(_id)!, parse.GetValue(_as), ct).ConfigureAwait(false);
        Console.WriteLine(layer.Id);
        return ExitCodes.Success;
    }
}
