using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Output;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands;

/// <summary><c>df [--json]</c>: where the store's space goes, like <c>docker system df -v</c>.</summary>
internal sealed class DfCommand : StoreCommand
{
    private readonly Option<bool> _json = new("--json") { Description = "Print a JSON object (shape in README.md)." };

    public DfCommand()
        : base("df", "Show the store's disk use: allocated bytes, bytes shared by containers, exclusive bytes per container, overcommit.")
    {
        Add(_json);
    }

    protected override Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        StoreUsage usage = store.GetStoreUsage();
        Dictionary<string, LayerUsage> figures = usage.Layers.ToDictionary(u => u.Id, StringComparer.Ordinal);
        List<LayerJson> layers = [.. store.List().Select(l => LayerJson.From(l, figures[l.Id]))];
        List<DfContainerJson> containers = [.. usage.Containers.Select(c =>
        {
            LayerJson layer = layers.Single(l => l.Id == c.Id);
            return new DfContainerJson(c.Id, layer.Parent, c.Size, layer.VirtualSize, c.Exclusive, c.Shared, layer.Capacity);
        })];
        var report = new DfJson(store.Root, usage.Allocated, usage.LayerBytes, usage.Shared, usage.Exclusive, usage.Unused,
            Math.Round(usage.Overcommit, 3), [.. layers.Where(l => l.State == "sealed")], containers);
        if (parse.GetValue(_json))
        {
            Console.WriteLine(JsonSerializer.Serialize(report, CliJsonContext.Default.DfJson));
            return Task.FromResult(ExitCodes.Success);
        }

        Tables.Write(["STORE", "ALLOCATED", "LAYERS", "SHARED", "EXCLUSIVE", "UNUSED", "OVERCOMMIT"],
        [
            [report.Root, ByteSize.Format(report.Allocated), ByteSize.Format(report.LayerBytes), ByteSize.Format(report.Shared),
             ByteSize.Format(report.Exclusive), ByteSize.Format(report.Unused), report.Overcommit.ToString("0.00", CultureInfo.InvariantCulture) + "x"],
        ]);
        Console.WriteLine();
        Tables.Write(["IMAGE LAYER", "PARENT", "SIZE", "VIRTUAL SIZE", "CHILDREN", "CONTAINERS"],
            report.Images.Select(l => (IReadOnlyList<string>)[l.Id, l.Parent ?? "-", ByteSize.Format(l.Size), ByteSize.Format(l.VirtualSize),
                l.Children.ToString(CultureInfo.InvariantCulture), l.Containers.ToString(CultureInfo.InvariantCulture)]));
        Console.WriteLine();
        Tables.Write(["CONTAINER", "PARENT", "SIZE", "VIRTUAL SIZE", "EXCLUSIVE", "SHARED", "CAPACITY"],
            report.Containers.Select(c => (IReadOnlyList<string>)[c.Id, c.Parent ?? "-", ByteSize.Format(c.Size), ByteSize.Format(c.VirtualSize),
                ByteSize.Format(c.Exclusive), ByteSize.Format(c.Shared), ByteSize.Format(c.Capacity)]));
        return Task.FromResult(ExitCodes.Success);
    }
}
