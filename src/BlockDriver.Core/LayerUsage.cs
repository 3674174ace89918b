namespace BlockDriver.Core;

/// <summary>Size figures of one layer, in Docker's vocabulary.</summary>
/// <param name="Id">The layer.</param>
/// <param name="Size">Bytes the layer's own file occupies on disk (allocated blocks, st_blocks × 512; not the file
/// length).</param>
/// <param name="VirtualSize">Size plus the sizes of all its ancestors: the allocated bytes of the whole chain it
/// reads.</param>
/// <param name="Capacity">The virtual disk's length in bytes.</param>
/// <param name="Children">Direct children (layers whose parent it is).</param>
/// <param name="Containers">Writable layers at or below it: the containers that read its bytes.</param>
public sealed record LayerUsage(string Id, long Size, long VirtualSize, long Capacity, int Children, int Containers);
