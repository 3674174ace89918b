namespace BlockDriver.Core;

/// <summary>What to create: see <see cref="ILayerStore.CreateAsync"/>.</summary>
public sealed record LayerSpec
{
    /// <summary>The default virtual size of a parentless layer: 10 GiB.</summary>
    public const long DefaultCapacity = 10L << 30;

    /// <summary>The new layer's id; null generates one.</summary>
    public string? Id { get; init; }

    /// <summary>The parent (must be sealed); null for a base layer.</summary>
    public string? Parent { get; init; }

    /// <summary>The kind; null picks <see cref="LayerKind.Container"/> over a parent and
    /// <see cref="LayerKind.Image"/> for a base.</summary>
    public LayerKind? Kind { get; init; }

    /// <summary>Virtual size in bytes of a base layer (default <see cref="DefaultCapacity"/>); a child inherits its
    /// parent's and may not ask for another.</summary>
    public long? Capacity { get; init; }

    /// <summary>Labels to record.</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();
}
