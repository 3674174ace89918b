using BlockDriver.Vhdx;

namespace BlockDriver.Core;

// Start-up reconciliation: finish or undo what crashed processes left in the journal, then compare the catalog
// with layers/. Nothing is deleted that the journal does not account for: stray files are moved to quarantine/,
// rows whose file is gone are reported (and can be removed with RemoveAsync).
public sealed partial class LayerStore
{
    /// <summary>Runs reconciliation again (it runs at open, see <see cref="Reconciliation"/>) and returns what it
    /// found and did this time.</summary>
    public async Task<IReadOnlyList<ReconcileAction>> ReconcileAsync(CancellationToken ct = default)
    {
        var found = new List<ReconcileAction>();
        if (!LooksInconsistent())
        {
            return found;
        }

        // Under the store lock every journal entry belongs to a dead process: a live one holds the lock for its
        // operation's whole run.
        using IDisposable mutex = await StoreMutex.AcquireAsync(Paths, ct).ConfigureAwait(false);
        foreach (PendingOperation operation in _catalog.PendingOperations())
        {
            string action = Recover(operation);
            _catalog.InTransaction(t => t.EndOperation(operation.Sequence));
            found.Add(new ReconcileAction(operation.Layer,
                $"unfinished {operation.Operation}{(operation.Argument is null ? "" : " " + operation.Argument)} (pid {operation.Pid}, {operation.Started:u})", action));
        }

        List<Layer> layers = _catalog.List();
        foreach (Layer layer in layers.Where(l => !File.Exists(l.Path)))
        {
            found.Add(new ReconcileAction(layer.Id, $"file {layer.Path} is missing",
                "reported (the layer cannot be opened; 'blockdriver layer rm' removes its record)"));
        }

        var known = new HashSet<string>(layers.Select(l => l.Path), StringComparer.Ordinal);
        foreach (string file in StrayFiles(known))
        {
            Directory.CreateDirectory(Paths.Quarantine, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            string target = Path.Combine(Paths.Quarantine, $"{DateTime.UtcNow:yyyyMMddTHHmmss}-{Path.GetFileName(file)}");
            File.Move(file, target);
            found.Add(new ReconcileAction(Path.GetFileName(file), "file without a catalog row", $"quarantined to {target}"));
        }

        return found;
    }

    private bool LooksInconsistent()
    {
        if (_catalog.PendingOperations().Count > 0)
        {
            return true;
        }

        List<Layer> layers = _catalog.List();
        return layers.Any(l => !File.Exists(l.Path))
            || StrayFiles(new HashSet<string>(layers.Select(l => l.Path), StringComparer.Ordinal)).Any();
    }

    private IEnumerable<string> StrayFiles(HashSet<string> known) =>
        Directory.EnumerateFileSystemEntries(Paths.Layers).Where(f => !known.Contains(f)).Order(StringComparer.Ordinal);

    // Each case mirrors the operation in LayerStore.Operations.cs: the last durable step decides the direction.
    private string Recover(PendingOperation operation)
    {
        string id = operation.Layer;
        string file = Paths.LayerFile(id);
        Layer? row = _catalog.Find(id);
        switch (operation.Operation)
        {
            case "create":
                DeleteIfPresent(file);
                return "rolled back: the half-made layer file was deleted";

            case "import":
                DeleteIfPresent(Paths.TempFile(id, "import"));
                if (row is null)
                {
                    DeleteIfPresent(file);
                }

                return "rolled back: the partial import was deleted";

            case "seal" when operation.Argument is string newId:
                string renamed = Paths.LayerFile(newId);
                if (File.Exists(renamed) && !File.Exists(file))
                {
                    _catalog.InTransaction(t =>
                    {
                        t.Rename(id, newId);
                        t.SetState(newId, LayerState.Sealed, row?.Kind == LayerKind.Snapshot ? LayerKind.Snapshot : LayerKind.Image);
                    });
                    return $"rolled forward: sealed as {newId}";
                }

                MakeWritable(file);
                return "rolled back: still writable";

            case "seal":
                MakeWritable(file);
                return "rolled back: still writable";

            case "remove":
                DeleteIfPresent(file);
                return "rolled forward: the layer file was deleted";

            case "snapshot":
                string snapshot = Paths.LayerFile(operation.Argument!);
                if (File.Exists(snapshot))
                {
                    DeleteIfPresent(file);
                    File.Move(snapshot, file);
                    MakeWritable(file);
                }

                return "rolled back: no snapshot taken, the layer keeps its data";

            case "revert":
                string temp = Paths.TempFile(id, "revert");
                if (File.Exists(temp))
                {
                    DeleteIfPresent(temp);
                    return "rolled back: the layer keeps its data";
                }

                if (ParentFileName(file) == operation.Argument + ".vhdx")
                {
                    _catalog.InTransaction(t => t.SetParent(id, operation.Argument));
                    return $"rolled forward: reverted to {operation.Argument}";
                }

                return "rolled back: the layer keeps its data";

            case "merge":
                string parentId = operation.Argument!;
                DeleteIfPresent(Paths.TempFile(id, "merge"));
                if (ParentFileName(file) == parentId + ".vhdx")
                {
                    return $"rolled back: {parentId} not merged";
                }

                DeleteIfPresent(Paths.LayerFile(parentId));
                string? grandparent = _catalog.Find(parentId)?.Parent;
                _catalog.InTransaction(t =>
                {
                    t.SetParent(id, grandparent);
                    t.Delete(parentId);
                });
                return $"rolled forward: {parentId} merged";

            case "flatten":
                DeleteIfPresent(Paths.TempFile(id, "flatten"));
                if (row?.Parent is not null && File.Exists(file) && ParentFileName(file) is null)
                {
                    _catalog.InTransaction(t => t.SetParent(id, null));
                    return "rolled forward: flattened";
                }

                return "rolled back: not flattened";

            default:
                return "reported: unknown operation, nothing done";
        }
    }

    // The file name a differencing file's relative_path names, or null for a base file.
    private static string? ParentFileName(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        VhdxFile file = VhdxFile.Open(path, readOnly: true);
        try
        {
            ParentLocator? locator = file.ParentLocator;
            if (locator is null || !locator.Entries.TryGetValue(ParentLocator.RelativePathKey, out string? relative))
            {
                return null;
            }

            return Path.GetFileName(relative.Replace('\\', '/'));
        }
        finally
        {
            file.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    private static void MakeWritable(string path)
    {
        if (File.Exists(path))
        {
            File.SetUnixFileMode(path, WritableMode);
        }
    }

    private static void DeleteIfPresent(string path)
    {
        if (File.Exists(path))
        {
            File.Delete(path);
        }
    }
}
