namespace BlockDriver.Containerd;

/// <summary>One mount containerd makes itself (its <c>containerd.types.Mount</c>, without a target).</summary>
/// <param name="Type">The file system type: <c>ext4</c>.</param>
/// <param name="Source">The block device (/dev/loopN) the snapshot is attached as.</param>
/// <param name="Options">fstab-style options: <c>rw,discard</c> for an active snapshot, <c>ro,noload</c> for a
/// view.</param>
public sealed record SnapshotMount(string Type, string Source, IReadOnlyList<string> Options);
