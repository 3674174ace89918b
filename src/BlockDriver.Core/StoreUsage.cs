namespace BlockDriver.Core;

/// <summary>Size figures of a whole store, like <c>docker system df -v</c>.</summary>
/// <param name="Allocated">Bytes the store directory occupies on disk: every file under it (layer files, catalog,
/// its WAL), st_blocks × 512, what <c>du -s --block-size=1</c> of the root reports.</param>
/// <param name="LayerBytes">The part of <paramref name="Allocated"/> in layer files.</param>
/// <param name="Shared">Bytes of sealed layers that two or more containers read.</param>
/// <param name="Exclusive">Bytes only one container reads: its own layer plus the sealed layers no other container
/// reads; the sum of <see cref="ContainerUsage.Exclusive"/>.</param>
/// <param name="Unused">Bytes of sealed layers no container reads (images without containers).</param>
/// <param name="Overcommit">Sum of the capacities of the writable layers (what the containers could grow to) over
/// <paramref name="Allocated"/>; 0 without writable layers.</param>
/// <param name="Layers">Per-layer figures, in catalog order.</param>
/// <param name="Containers">Per-container (writable layer) figures.</param>
public sealed record StoreUsage(
    long Allocated,
    long LayerBytes,
    long Shared,
    long Exclusive,
    long Unused,
    double Overcommit,
    IReadOnlyList<LayerUsage> Layers,
    IReadOnlyList<ContainerUsage> Containers);
