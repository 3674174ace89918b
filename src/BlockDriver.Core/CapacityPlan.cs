namespace BlockDriver.Core;

/// <summary>What running containers on an image will cost, from <see cref="LayerStore.PlanAsync"/>.</summary>
/// <param name="Image">The sealed layer the containers would be created on.</param>
/// <param name="Containers">How many containers.</param>
/// <param name="WritePerContainer">Bytes each container is expected to write (new data, not overwrites).</param>
/// <param name="ImageBytes">The image chain's allocated bytes (its virtual size): already paid, shared by all.</param>
/// <param name="PerContainer">New bytes on disk per container: an empty child's metadata plus the data and the
/// sector bitmaps the writes need, measured on a scratch child of this very image.</param>
/// <param name="Total">New bytes for all containers: <paramref name="Containers"/> × <paramref name="PerContainer"/>.</param>
/// <param name="WorstCase">New bytes if every container filled its whole virtual disk.</param>
/// <param name="Available">Free bytes on the store's file system now.</param>
public sealed record CapacityPlan(
    string Image,
    int Containers,
    long WritePerContainer,
    long ImageBytes,
    long PerContainer,
    long Total,
    long WorstCase,
    long Available)
{
    /// <summary>True when <see cref="Total"/> fits in <see cref="Available"/>.</summary>
    public bool Fits => Total <= Available;

    /// <summary>True when even <see cref="WorstCase"/> fits: no overcommit.</summary>
    public bool FitsWorstCase => WorstCase <= Available;
}
