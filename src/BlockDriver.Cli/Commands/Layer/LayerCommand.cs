using System.CommandLine;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>blockdriver layer</c>: the layers of a store.</summary>
internal sealed class LayerCommand : Command
{
    public LayerCommand()
        : base("layer", "Create, fill, seal, snapshot, merge, export and remove the layers of a store.")
    {
        Add(new LayerCreateCommand());
        Add(new LayerImportCommand());
        Add(new LayerApplyCommand());
        Add(new LayerChangesCommand());
        Add(new LayerDiffCommand());
        Add(new LayerSealCommand());
        Add(new LayerRmCommand());
        Add(new LayerSnapshotCommand());
        Add(new LayerRevertCommand());
        Add(new LayerCloneCommand());
        Add(new LayerMergeCommand());
        Add(new LayerFlattenCommand());
        Add(new LayerExportCommand());
        Add(new LayerLsCommand());
        Add(new LayerInspectCommand());
        Add(new LayerLabelCommand());
    }
}
