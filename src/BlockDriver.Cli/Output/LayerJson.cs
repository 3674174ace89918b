using BlockDriver.Core;

namespace BlockDriver.Cli.Output;

/// <summary>One layer in <c>layer ls --json</c> and <c>layer inspect --json</c> (shape in README.md).</summary>
/// <param name="Id">The layer id.</param>
/// <param name="Parent">The parent's id; null for a base.</param>
/// <param name="Kind">image, container or snapshot.</param>
/// <param name="State">writable or sealed.</param>
/// <param name="Size">Bytes the layer's file occupies on disk.</param>
/// <param name="VirtualSize">Size plus the ancestors' sizes.</param>
/// <param name="Capacity">The virtual disk's length.</param>
/// <param name="Children">Number of direct children.</param>
/// <param name="Containers">Writable layers at or below it.</param>
/// <param name="Created">Creation time, UTC, ISO 8601.</param>
/// <param name="Labels">Labels.</param>
/// <param name="Path">The layer's VHDX file.</param>
internal sealed record LayerJson(
    string Id,
    string? Parent,
    string Kind,
    string State,
    long Size,
    long VirtualSize,
    long Capacity,
    int Children,
    int Containers,
    DateTimeOffset Created,
    IReadOnlyDictionary<string, string> Labels,
    string Path)
{
    /// <summary>Combines the catalog's record with the computed figures.</summary>
    public static LayerJson From(Layer layer, LayerUsage usage) => new(
        layer.Id, layer.Parent, layer.Kind.ToString().ToLowerInvariant(), layer.State.ToString().ToLowerInvariant(),
        usage.Size, usage.VirtualSize, usage.Capacity, usage.Children, usage.Containers, layer.Created, layer.Labels, layer.Path);
}
