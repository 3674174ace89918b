namespace BlockDriver.Core;

/// <summary>What a layer is for. The kind is a label for people and adapters; what a layer may do follows from its
/// <see cref="LayerState"/>.</summary>
public enum LayerKind
{
    /// <summary>A layer of an image (Docker's image layer, containerd's committed snapshot); sealed once built.</summary>
    Image,

    /// <summary>A container's writable layer (Docker's CreateReadWrite, containerd's active snapshot, a VM disk).</summary>
    Container,

    /// <summary>A sealed point-in-time state of a writable layer, made by <see cref="ILayerStore.SnapshotAsync"/>.</summary>
    Snapshot,
}
