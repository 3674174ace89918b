namespace BlockDriver.Cli.Output;

/// <summary>The document <c>df --json</c> prints (shape in README.md).</summary>
/// <param name="Root">The store directory.</param>
/// <param name="Allocated">Bytes the store directory occupies on disk (what du reports).</param>
/// <param name="LayerBytes">The part of it in layer files.</param>
/// <param name="Shared">Bytes of sealed layers read by two or more containers.</param>
/// <param name="Exclusive">Bytes read by exactly one container.</param>
/// <param name="Unused">Bytes of sealed layers no container reads.</param>
/// <param name="Overcommit">Sum of writable layers' capacities over allocated bytes.</param>
/// <param name="Images">Sealed layers.</param>
/// <param name="Containers">Writable layers with their shared and exclusive bytes.</param>
internal sealed record DfJson(
    string Root,
    long Allocated,
    long LayerBytes,
    long Shared,
    long Exclusive,
    long Unused,
    double Overcommit,
    IReadOnlyList<LayerJson> Images,
    IReadOnlyList<DfContainerJson> Containers);
