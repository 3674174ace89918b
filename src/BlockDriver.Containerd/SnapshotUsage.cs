namespace BlockDriver.Containerd;

/// <summary>What one snapshot itself uses, excluding its parents (containerd's <c>Usage</c>).</summary>
/// <param name="Size">Bytes allocated on disk by the snapshot's layer file (st_blocks × 512).</param>
/// <param name="Inodes">Inodes in use in the snapshot's ext4 file system minus those in use in its parent's, as
/// each superblock last recorded them (at commit for a committed snapshot; at the last sync for an active one);
/// 0 when the snapshot freed more than it made.</param>
public sealed record SnapshotUsage(long Size, long Inodes);
