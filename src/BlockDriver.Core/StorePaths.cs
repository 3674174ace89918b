namespace BlockDriver.Core;

/// <summary>Where things live in a store directory (DESIGN.md, "Store layout"):
/// <code>
/// catalog.db           the catalog (SQLite, WAL mode; catalog.db-wal and catalog.db-shm beside it)
/// layers/ID.vhdx       one VHDX file per layer; a child's parent locator names its parent by relative path
/// layers/.ID.OP.tmp    a file being built by an operation journaled in the catalog (see LayerStore)
/// mnt/ID/              mount points
/// run/store.lock       held (fcntl, exclusive) by whoever changes the catalog or the layer files
/// run/locks/ID.lock    held shared by readers of layer ID, exclusively by its one writer
/// quarantine/          files reconciliation found without a catalog row, moved aside, never deleted
/// </code></summary>
public sealed class StorePaths
{
    /// <summary>Paths of the store at <paramref name="root"/> (made absolute).</summary>
    public StorePaths(string root)
    {
        Root = System.IO.Path.GetFullPath(root);
    }

    /// <summary>The store directory.</summary>
    public string Root { get; }

    /// <summary>The catalog database.</summary>
    public string Catalog => System.IO.Path.Combine(Root, "catalog.db");

    /// <summary>The directory of layer files.</summary>
    public string Layers => System.IO.Path.Combine(Root, "layers");

    /// <summary>Mount points.</summary>
    public string Mounts => System.IO.Path.Combine(Root, "mnt");

    /// <summary>Sockets, lock files and other run-time state.</summary>
    public string Run => System.IO.Path.Combine(Root, "run");

    /// <summary>Per-layer lock files.</summary>
    public string Locks => System.IO.Path.Combine(Run, "locks");

    /// <summary>The store-wide lock for changes.</summary>
    public string StoreLock => System.IO.Path.Combine(Run, "store.lock");

    /// <summary>Where reconciliation moves files it cannot account for.</summary>
    public string Quarantine => System.IO.Path.Combine(Root, "quarantine");

    /// <summary>The VHDX file of a layer.</summary>
    public string LayerFile(string id) => System.IO.Path.Combine(Layers, id + ".vhdx");

    /// <summary>A temporary file an operation builds for a layer before renaming it into place.</summary>
    public string TempFile(string id, string operation) => System.IO.Path.Combine(Layers, $".{id}.{operation}.tmp");

    /// <summary>The lock file of a layer.</summary>
    public string LayerLock(string id) => System.IO.Path.Combine(Locks, id + ".lock");
}
