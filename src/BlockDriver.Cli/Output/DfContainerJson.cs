namespace BlockDriver.Cli.Output;

/// <summary>One writable layer in <c>df --json</c>.</summary>
/// <param name="Id">The layer.</param>
/// <param name="Parent">Its parent, or null.</param>
/// <param name="Size">Its own allocated bytes.</param>
/// <param name="VirtualSize">Size plus its ancestors'.</param>
/// <param name="Exclusive">What removing it (and the layers only it reads) would free.</param>
/// <param name="Shared">Bytes of its ancestors other containers read too.</param>
/// <param name="Capacity">Its virtual disk's length.</param>
internal sealed record DfContainerJson(string Id, string? Parent, long Size, long VirtualSize, long Exclusive, long Shared, long Capacity);
