using System.CommandLine;
using BlockDriver.Cli.Images;
using BlockDriver.Cli.Output;
using BlockDriver.Core;
using BlockDriver.Core.Images;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer import FILE [--parent ID] [--id ID]</c>: a writable layer whose content is FILE (raw or VHDX);
/// over a parent only the differing sectors are stored. Prints the id.</summary>
internal sealed class LayerImportCommand : StoreCommand
{
    private readonly Argument<string> _file = new("FILE") { Description = "A raw or VHDX disk image." };
    private readonly Option<string?> _parent = new("--parent") { Description = "Store only what differs from this sealed layer (FILE must be its size).", HelpName = "ID" };
    private readonly Option<string?> _id = new("--id") { Description = "The new layer's id [default: generated].", HelpName = "ID" };
    private readonly Option<string[]> _labels = LayerOptions.Labels();
    private readonly Option<string?> _parentDir = ParentDirOption.Create();

    public LayerImportCommand()
        : base("import", "Import a raw or VHDX file as a writable layer. Prints its id.")
    {
        Add(_file);
        Add(_parent);
        Add(_id);
        Add(_labels);
        Add(_parentDir);
    }

    protected override bool CreatesStore => true;

    protected override void CheckArguments(ParseResult parse)
    {
        ImageFiles.RequireFile(parse.GetValue(_file)!);
        ParentDirOption.RootFor(parse.GetValue(_parentDir), parse.GetValue(_file)!);
        LayerOptions.ParseLabels(parse.GetValue(_labels));
        if (parse.GetValue(_id) is string id)
        {
            LayerIds.Validate(id);
        }
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        string file = parse.GetValue(_file)!;
        var spec = new LayerSpec
        {
            Id = parse.GetValue(_id),
            Parent = parse.GetValue(_parent),
            Labels = LayerOptions.ParseLabels(parse.GetValue(_labels)),
        };
        long total = File.Exists(file) ? new FileInfo(file).Length : 0;
        Core.Layer layer = await ProgressDisplay.RunAsync($"importing {Path.GetFileName(file)}", total,
            progress => store.ImportAsync(file, spec, progress, ParentDirOption.RootFor(parse.GetValue(_parentDir), file), ct)).ConfigureAwait(false);
        Console.WriteLine(layer.Id);
        return ExitCodes.Success;
    }
}
