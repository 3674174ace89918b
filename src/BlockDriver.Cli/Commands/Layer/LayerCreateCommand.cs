using System.CommandLine;
using BlockDriver.Cli.Output;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer create [--parent ID] [--size SIZE] [--id ID] [--kind KIND] [--label K=V]...</c>: a writable
/// layer; prints its id.</summary>
internal sealed class LayerCreateCommand : StoreCommand
{
    private readonly Option<string?> _parent = new("--parent") { Description = "A sealed layer to build on.", HelpName = "ID" };
    private readonly Option<string?> _size = new("--size") { Description = "Virtual size of a base layer (10G, 512M...) [default: 10G].", HelpName = "SIZE" };
    private readonly Option<string?> _id = new("--id") { Description = "The new layer's id [default: generated].", HelpName = "ID" };
    private readonly Option<LayerKind?> _kind = new("--kind") { Description = "image, container or snapshot [default: container over a parent, image for a base].", HelpName = "KIND" };
    private readonly Option<string[]> _labels = LayerOptions.Labels();

    public LayerCreateCommand()
        : base("create", "Create a writable layer: a blank disk, or a child of a sealed layer. Prints its id.")
    {
        Add(_parent);
        Add(_size);
        Add(_id);
        Add(_kind);
        Add(_labels);
    }

    protected override bool CreatesStore => true;

    protected override void CheckArguments(ParseResult parse)
    {
        if (parse.GetValue(_size) is string size)
        {
            ByteSize.Parse(size, "size");
        }

        LayerOptions.ParseLabels(parse.GetValue(_labels));
        if (parse.GetValue(_id) is string id)
        {
            LayerIds.Validate(id);
        }
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        string? size = parse.GetValue(_size);
        Core.Layer layer = await store.CreateAsync(new LayerSpec
        {
            Id = parse.GetValue(_id),
            Parent = parse.GetValue(_parent),
            Kind = parse.GetValue(_kind),
            Capacity = size is null ? null : ByteSize.Parse(size, "size"),
            Labels = LayerOptions.ParseLabels(parse.GetValue(_labels)),
        }, ct).ConfigureAwait(false);
        Console.WriteLine(layer.Id);
        return ExitCodes.Success;
    }
}
