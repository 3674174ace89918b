using System.Globalization;
using Microsoft.Data.Sqlite;

namespace BlockDriver.Core;

/// <summary>Changes inside one transaction.</summary>
internal sealed class CatalogTransaction
{
    private readonly LayerCatalog _catalog;
    private readonly SqliteTransaction _transaction;

    internal CatalogTransaction(LayerCatalog catalog, SqliteTransaction transaction)
    {
        _catalog = catalog;
        _transaction = transaction;
    }

    /// <summary>Adds a layer row and its labels.</summary>
    public void Insert(Layer layer)
    {
        Run("INSERT INTO layers (id, parent, kind, state, created, capacity) VALUES ($id, $parent, $kind, $state, $created, $capacity)",
            ("$id", layer.Id), ("$parent", layer.Parent), ("$kind", Name(layer.Kind)), ("$state", Name(layer.State)),
            ("$created", layer.Created.UtcDateTime.ToString("O", CultureInfo.InvariantCulture)), ("$capacity", layer.Capacity));
        SetLabels(layer.Id, layer.Labels);
    }

    /// <summary>Deletes a layer row (its labels go with it).</summary>
    public void Delete(string id) => Run("DELETE FROM layers WHERE id = $id", ("$id", id));

    /// <summary>Sets a layer's state and kind.</summary>
    public void SetState(string id, LayerState state, LayerKind kind) =>
        Run("UPDATE layers SET state = $state, kind = $kind WHERE id = $id", ("$id", id), ("$state", Name(state)), ("$kind", Name(kind)));

    /// <summary>Renames a layer (labels follow through ON UPDATE CASCADE; it must have no children).</summary>
    public void Rename(string id, string newId) => Run("UPDATE layers SET id = $new WHERE id = $id", ("$id", id), ("$new", newId));

    /// <summary>Points a layer at another parent (null: a base).</summary>
    public void SetParent(string id, string? parent) =>
        Run("UPDATE layers SET parent = $parent WHERE id = $id", ("$id", id), ("$parent", parent));

    /// <summary>Adds, replaces (non-null value) or removes (null value) labels.</summary>
    public void SetLabels(string id, IEnumerable<KeyValuePair<string, string>> labels)
    {
        foreach ((string key, string value) in labels)
        {
            Run("INSERT OR REPLACE INTO labels (layer, key, value) VALUES ($id, $key, $value)", ("$id", id), ("$key", key), ("$value", value));
        }
    }

    /// <summary>Removes every label of a layer.</summary>
    public void ClearLabels(string id) => Run("DELETE FROM labels WHERE layer = $id", ("$id", id));

    /// <summary>Journals an operation; returns its key.</summary>
    public long BeginOperation(string operation, string layer, string? argument)
    {
        Run("INSERT INTO operations (op, layer, argument, pid, started) VALUES ($op, $layer, $argument, $pid, $started)",
            ("$op", operation), ("$layer", layer), ("$argument", argument), ("$pid", Environment.ProcessId),
            ("$started", DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture)));
        using SqliteCommand command = _catalog.Command("SELECT last_insert_rowid()");
        command.Transaction = _transaction;
        return (long)command.ExecuteScalar()!;
    }

    /// <summary>Deletes a journal entry.</summary>
    public void EndOperation(long sequence) => Run("DELETE FROM operations WHERE seq = $seq", ("$seq", sequence));

    private static string Name<T>(T value)
        where T : struct, Enum => value.ToString().ToLowerInvariant();

    private void Run(string sql, params (string Name, object? Value)[] parameters)
    {
        using SqliteCommand command = _catalog.Command(sql, parameters);
        command.Transaction = _transaction;
        command.ExecuteNonQuery();
    }
}
