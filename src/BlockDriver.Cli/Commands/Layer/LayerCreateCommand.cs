using System.CommandLine;
using BlockDriver.Abstractions;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer create [--parent ID | --blank] [--size SIZE] [--id ID] [--kind KIND] [--label K=V]...</c>: a
/// writable layer; prints its id. Without --parent or --blank it is a child of the store's base file system layer
/// of SIZE (an empty ext4, made on first use), so it can be mounted and filled with <c>layer apply</c> at once.</summary>
internal sealed class LayerCreateCommand : StoreCommand
{
    private readonly Option<string?> _parent = new("--parent") { Description = "A sealed layer to build on.", HelpName = "ID" };
    private readonly Option<bool> _blank = new("--blank") { Description = "A blank disk (no file system) instead of a child of the base file system layer." };
    private readonly Option<string?> _size = new("--size")
    {
        Description = "Virtual size (10G, 512M...) of a blank layer, or of the base file system layer to build on [default: 10G].",
        HelpName = "SIZE",
    };

    private readonly Option<string?> _id = new("--id") { Description = "The new layer's id [default: generated].", HelpName = "ID" };
    private readonly Option<LayerKind?> _kind = new("--kind") { Description = "image, container or snapshot [default: container over --parent, else image].", HelpName = "KIND" };
    private readonly Option<string[]> _labels = LayerOptions.Labels();

    public LayerCreateCommand()
        : base("create", "Create a writable layer: over the store's base ext4 file system (mountable), a blank disk (--blank), or a child of a sealed layer (--parent). Prints its id.")
    {
        Add(_parent);
        Add(_blank);
        Add(_size);
        Add(_id);
        Add(_kind);
        Add(_labels);
    }

    protected override bool CreatesStore => true;

    protected override void CheckArguments(ParseResult parse)
    {
        if (parse.GetValue(_blank) && parse.GetValue(_parent) is not null)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, "--blank and --parent cannot be used together: a child has its parent's content.");
        }

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
        long? capacity = parse.GetValue(_size) is string size ? ByteSize.Parse(size, "size") : null;
        string? parent = parse.GetValue(_parent);
        LayerKind? kind = parse.GetValue(_kind);
        string? id = parse.GetValue(_id);
        if (id is not null && store.Find(id) is not null)
        {
            // Checked before the base file system layer is made, so that a refused create changes nothing.
            throw new BlockDriverException(ErrorKind.AlreadyExists, $"layer {id} already exists.");
        }

        if (parent is null && !parse.GetValue(_blank))
        {
            ILayerContentService content = LayerContentServices.Open(store);
            await using (content.ConfigureAwait(false))
            {
                parent = await content.EnsureBaseFilesystemAsync(capacity ?? LayerSpec.DefaultCapacity, ct).ConfigureAwait(false);
            }

            // The child takes its capacity from the base file system layer; a layer made from nothing starts an image.
            capacity = null;
            kind ??= LayerKind.Image;
        }

        Core.Layer layer = await store.CreateAsync(new LayerSpec
        {
            Id = id,
            Parent = parent,
            Kind = kind,
            Capacity = capacity,
            Labels = LayerOptions.ParseLabels(parse.GetValue(_labels)),
        }, ct).ConfigureAwait(false);
        Console.WriteLine(layer.Id);
        return ExitCodes.Success;
    }
}
