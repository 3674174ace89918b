using System.Globalization;
using BlockDriver.Core;

namespace BlockDriver.Containerd;

/// <summary>
/// How a snapshot is recorded in its layer's labels in the store's catalog: containerd's keys and names are any
/// string ("default/12/sha256:…") while layer ids are 1-128 of [A-Za-z0-9_.-], so layers get generated ids and the
/// snapshot's identity lives in labels. Everything is in one catalog row, so it changes in the catalog's transaction.
/// </summary>
internal static class SnapshotLabels
{
    /// <summary>The proxy plugin name the snapshot belongs to (the requests' <c>snapshotter</c> field).</summary>
    public const string Snapshotter = "containerd.snapshotter";

    /// <summary>The key (active, view) or name (committed).</summary>
    public const string Name = "containerd.name";

    /// <summary><c>active</c>, <c>view</c> or <c>committed</c>.</summary>
    public const string Kind = "containerd.kind";

    /// <summary>Creation time, round-trip ISO 8601.</summary>
    public const string Created = "containerd.created";

    /// <summary>Last label update, round-trip ISO 8601.</summary>
    public const string Updated = "containerd.updated";

    /// <summary>Set on an active snapshot's layer just before it is sealed: the name it is being committed as. A
    /// commit interrupted after the seal is finished from it at the next start or <c>Cleanup</c>.</summary>
    public const string Committing = "containerd.committing";

    /// <summary>Set with <see cref="Committing"/> when a mounted active snapshot is committed: the id of the sealed layer
    /// its data becomes (the active layer goes on, retired, under the old mount). A commit interrupted after that layer
    /// was made is finished from it.</summary>
    public const string CommitLayer = "containerd.commit-layer";

    /// <summary>Set when <c>Remove</c> has decided to remove the snapshot, or a mounted active snapshot was committed
    /// (its layer is retired): from then on it is gone for containerd, and a layer removal that failed (the layer is
    /// still mounted) is retried by <c>Cleanup</c>, by <c>Remove</c> of its parent and at the next start.</summary>
    public const string Removing = "containerd.removing";

    /// <summary>Prefix of containerd's own labels.</summary>
    public const string UserPrefix = "containerd.label.";

    public static string KindName(SnapshotKind kind) => kind switch
    {
        SnapshotKind.Active => "active",
        SnapshotKind.View => "view",
        SnapshotKind.Committed => "committed",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    public static string Time(DateTimeOffset time) => time.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    /// <summary>True when <paramref name="layer"/> holds a snapshot of <paramref name="snapshotter"/> that is not
    /// being removed.</summary>
    public static bool IsLive(Layer layer, string snapshotter) =>
        layer.Labels.TryGetValue(Snapshotter, out string? s) && s == snapshotter && !layer.Labels.ContainsKey(Removing)
        && layer.Labels.ContainsKey(Name);

    /// <summary>The snapshot <paramref name="layer"/> holds; its parent's name is looked up in
    /// <paramref name="byLayerId"/> (a parent that is no snapshot, the base file system layer, gives "").</summary>
    public static SnapshotInfo ToInfo(Layer layer, IReadOnlyDictionary<string, Layer> byLayerId)
    {
        IReadOnlyDictionary<string, string> l = layer.Labels;
        SnapshotKind kind = l.GetValueOrDefault(Kind) switch
        {
            "view" => SnapshotKind.View,
            "committed" => SnapshotKind.Committed,
            _ => SnapshotKind.Active,
        };
        string parent = "";
        if (layer.Parent is string p && byLayerId.TryGetValue(p, out Layer? parentLayer) &&
            parentLayer.Labels.TryGetValue(Name, out string? parentName) && parentLayer.Labels.ContainsKey(Snapshotter))
        {
            parent = parentName;
        }

        DateTimeOffset created = ParseTime(l.GetValueOrDefault(Created)) ?? layer.Created;
        DateTimeOffset updated = ParseTime(l.GetValueOrDefault(Updated)) ?? created;
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach ((string key, string value) in l)
        {
            if (key.StartsWith(UserPrefix, StringComparison.Ordinal))
            {
                labels[key[UserPrefix.Length..]] = value;
            }
        }

        return new SnapshotInfo(l[Name], parent, kind, created, updated, labels, layer.Id);
    }

    private static DateTimeOffset? ParseTime(string? text) =>
        text is not null && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out DateTimeOffset t) ? t : null;
}
