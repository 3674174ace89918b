using System.CommandLine;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Output;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer export ID OUT [-O raw|vhdx]</c>: a layer's visible content as a raw file or standalone VHDX.</summary>
internal sealed class LayerExportCommand : StoreCommand
{
    private readonly Argument<string> _id = LayerOptions.Id("The layer to export.");
    private readonly Argument<string> _out = new("OUT") { Description = "The file to write (replaced if it exists)." };
    private readonly Option<string> _format = new("-O", "--format")
    {
        Description = "raw or vhdx [default: vhdx when OUT ends in .vhdx, else raw].",
        HelpName = "FORMAT",
    };

    public LayerExportCommand()
        : base("export", "Export a layer's content (through its whole chain) to a raw file or a standalone VHDX.")
    {
        Add(_id);
        Add(_out);
        Add(_format);
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        string id = parse.GetValue(_id)!;
        string output = parse.GetValue(_out)!;
        ExportFormat format = parse.GetValue(_format)?.ToLowerInvariant() switch
        {
            null => output.EndsWith(".vhdx", StringComparison.OrdinalIgnoreCase) ? ExportFormat.Vhdx : ExportFormat.Raw,
            "raw" => ExportFormat.Raw,
            "vhdx" => ExportFormat.Vhdx,
            string other => throw new BlockDriverException(ErrorKind.InvalidArgument, $"unknown format \"{other}\"; use raw or vhdx."),
        };
        await ProgressDisplay.RunAsync($"exporting {id}", store.Get(id).Capacity, async progress =>
        {
            await store.ExportAsync(id, output, format, progress, ct).ConfigureAwait(false);
            return 0;
        }).ConfigureAwait(false);
        return ExitCodes.Success;
    }
}
