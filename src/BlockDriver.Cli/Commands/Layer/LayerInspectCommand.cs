using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Output;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer inspect ID [--json]</c>: one layer's record and figures.</summary>
internal sealed class LayerInspectCommand : StoreCommand
{
    private readonly Argument<string> _id = LayerOptions.Id();
    private readonly Option<bool> _json = new("--json") { Description = "Print a JSON object (shape in README.md)." };

    public LayerInspectCommand()
        : base("inspect", "Show one layer: parent, kind, state, sizes, children, labels and file.")
    {
        Add(_id);
        Add(_json);
    }

    protected override Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        Core.Layer layer = store.Get(parse.GetValue(_id)!);
        LayerJson info = LayerJson.From(layer, store.GetUsage(layer.Id));
        if (parse.GetValue(_json))
        {
            Console.WriteLine(JsonSerializer.Serialize(info, CliJsonContext.Default.LayerJson));
            return Task.FromResult(ExitCodes.Success);
        }

        Tables.Write(["FIELD", "VALUE"], new List<IReadOnlyList<string>>
        {
            new[] { "id", info.Id },
            new[] { "parent", info.Parent ?? "-" },
            new[] { "kind", info.Kind },
            new[] { "state", info.State },
            new[] { "size", ByteSize.FormatWithBytes(info.Size) },
            new[] { "virtual size", ByteSize.FormatWithBytes(info.VirtualSize) },
            new[] { "capacity", ByteSize.FormatWithBytes(info.Capacity) },
            new[] { "children", info.Children.ToString(CultureInfo.InvariantCulture) },
            new[] { "containers", info.Containers.ToString(CultureInfo.InvariantCulture) },
            new[] { "created", info.Created.ToString("O", CultureInfo.InvariantCulture) },
            new[] { "labels", string.Join(", ", info.Labels.Select(l => $"{l.Key}={l.Value}")) },
            new[] { "path", info.Path },
        });
        return Task.FromResult(ExitCodes.Success);
    }
}
