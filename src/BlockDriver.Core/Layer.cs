namespace BlockDriver.Core;

/// <summary>A layer as the catalog records it.</summary>
/// <param name="Id">The layer's id (see <see cref="LayerIds"/>).</param>
/// <param name="Parent">The parent's id; null for a base layer.</param>
/// <param name="Kind">Image, container or snapshot.</param>
/// <param name="State">Writable or sealed.</param>
/// <param name="Created">When the layer was made (UTC).</param>
/// <param name="Capacity">The virtual disk's length in bytes (the same for every layer of a chain).</param>
/// <param name="Labels">Free-form key/value labels.</param>
/// <param name="Path">The layer's VHDX file (absolute).</param>
public sealed record Layer(
    string Id,
    string? Parent,
    LayerKind Kind,
    LayerState State,
    DateTimeOffset Created,
    long Capacity,
    IReadOnlyDictionary<string, string> Labels,
    string Path)
{
    /// <summary>True when the layer can no longer be written.</summary>
    public bool IsSealed => State == LayerState.Sealed;
}
