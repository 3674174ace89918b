namespace BlockDriver.Containerd;

/// <summary>containerd's snapshot kinds (the wire enum <c>Kind</c> without UNKNOWN).</summary>
public enum SnapshotKind
{
    /// <summary>A read-only view of a committed parent (containerd's <c>View</c>); cannot be committed.</summary>
    View = 1,

    /// <summary>A writable snapshot (containerd's <c>Prepare</c>); committing it makes a committed snapshot.</summary>
    Active = 2,

    /// <summary>A sealed snapshot, the only kind that can be a parent.</summary>
    Committed = 3,
}
