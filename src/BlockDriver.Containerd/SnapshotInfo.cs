namespace BlockDriver.Containerd;

/// <summary>A snapshot as containerd sees it (its <c>Info</c>), and the layer that holds it.</summary>
/// <param name="Name">The key of an active or view snapshot, or the name of a committed one.</param>
/// <param name="Parent">The parent's name; empty for a snapshot over the empty file system.</param>
/// <param name="Kind">View, active or committed.</param>
/// <param name="Created">When the snapshot was made (for a committed one: when it was committed), UTC.</param>
/// <param name="Updated">When its labels last changed (equal to <paramref name="Created"/> until then), UTC.</param>
/// <param name="Labels">containerd's labels (without the store's own).</param>
/// <param name="LayerId">The store layer that holds the snapshot.</param>
public sealed record SnapshotInfo(
    string Name,
    string Parent,
    SnapshotKind Kind,
    DateTimeOffset Created,
    DateTimeOffset Updated,
    IReadOnlyDictionary<string, string> Labels,
    string LayerId);
