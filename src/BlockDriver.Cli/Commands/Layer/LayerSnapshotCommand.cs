using System.CommandLine;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer snapshot ID [--id SNAPID]</c>: freezes a writable layer's state; prints the snapshot's id.</summary>
internal sealed class LayerSnapshotCommand : StoreCommand
{
    private readonly Argument<string> _id = LayerOptions.Id("The writable layer.");
    private readonly Option<string?> _snapshotId = new("--id") { Description = "The snapshot's id [default: generated].", HelpName = "SNAPID" };

    public LayerSnapshotCommand()
        : base("snapshot", "Take a snapshot of a writable layer: its state so far becomes a sealed snapshot and the layer continues as its child.")
    {
        Add(_id);
        Add(_snapshotId);
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        Core.Layer snapshot = await store.SnapshotAsync(parse.GetValue(_id)!, parse.GetValue(_snapshotId), ct).ConfigureAwait(false);
        Console.WriteLine(snapshot.Id);
        return ExitCodes.Success;
    }
}
