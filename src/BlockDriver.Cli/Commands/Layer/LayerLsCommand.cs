using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Output;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer ls [--json]</c>: every layer with its sizes.</summary>
internal sealed class LayerLsCommand : StoreCommand
{
    private readonly Option<bool> _json = new("--json") { Description = "Print a JSON array (shape in README.md)." };

    public LayerLsCommand()
        : base("ls", "List the layers of the store with their size (own bytes on disk), virtual size and capacity.")
    {
        Add(_json);
    }

    /// <summary>Every layer with its figures.</summary>
    public static List<LayerJson> Describe(LayerStore store)
    {
        StoreUsage usage = store.GetStoreUsage();
        Dictionary<string, LayerUsage> figures = usage.Layers.ToDictionary(u => u.Id, StringComparer.Ordinal);
        return [.. store.List().Select(l => LayerJson.From(l, figures[l.Id]))];
    }

    protected override Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        List<LayerJson> layers = Describe(store);
        if (parse.GetValue(_json))
        {
            Console.WriteLine(JsonSerializer.Serialize(layers, CliJsonContext.Default.ListLayerJson));
        }
        else
        {
            Tables.Write(["ID", "PARENT", "KIND", "STATE", "SIZE", "VIRTUAL SIZE", "CAPACITY", "CHILDREN", "CREATED"],
                layers.Select(l => (IReadOnlyList<string>)[l.Id, l.Parent ?? "-", l.Kind, l.State, ByteSize.Format(l.Size),
                    ByteSize.Format(l.VirtualSize), ByteSize.Format(l.Capacity), l.Children.ToString(CultureInfo.InvariantCulture),
                    l.Created.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)]));
        }

        return Task.FromResult(ExitCodes.Success);
    }
}
