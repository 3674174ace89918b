using System.Globalization;
using BlockDriver.Abstractions;
using Microsoft.Data.Sqlite;

namespace BlockDriver.Core;

/// <summary>The catalog: an SQLite database in WAL mode with synchronous=FULL (a committed transaction survives a
/// crash). Tables: layers (one row per layer), labels, operations (the journal of unfinished file work, see
/// <see cref="PendingOperation"/>) and meta (format marker and schema version).</summary>
/// <remarks>One connection per instance; thread-safe by a lock around every use. Readers in other processes see
/// committed state at once (WAL); writers are serialised by SQLite and, above it, by <see cref="StoreMutex"/>.</remarks>
internal sealed class LayerCatalog : IDisposable
{
    /// <summary>The meta row that marks a BlockDriver store.</summary>
    public const string FormatName = "blockdriver-store";

    private const int SchemaVersion = 1;

    private readonly SqliteConnection _connection;
    private readonly Lock _lock = new();
    private readonly string _layersDirectory;

    private LayerCatalog(SqliteConnection connection, string layersDirectory)
    {
        _connection = connection;
        _layersDirectory = layersDirectory;
    }

    /// <summary>Opens the catalog at <paramref name="path"/>, creating the schema when <paramref name="create"/>.</summary>
    /// <exception cref="BlockDriverException">Corrupt when the file is not a BlockDriver catalog.</exception>
    public static LayerCatalog Open(string path, string layersDirectory, bool create)
    {
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = create ? SqliteOpenMode.ReadWriteCreate : SqliteOpenMode.ReadWrite,
            Pooling = false,
            DefaultTimeout = 60,
        };
        var connection = new SqliteConnection(builder.ToString());
        try
        {
            connection.Open();
            var catalog = new LayerCatalog(connection, layersDirectory);

            // An existing database is checked before anything is written to it (journal_mode=WAL rewrites the
            // header of whatever SQLite file it is given).
            if (!create)
            {
                catalog.CheckFormat(path);
            }

            Execute(connection, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
            if (create)
            {
                catalog.CreateSchema();
                catalog.CheckFormat(path);
            }

            return catalog;
        }
        catch (SqliteException e)
        {
            connection.Dispose();
            throw new BlockDriverException(ErrorKind.Corrupt, $"{path}: not a BlockDriver catalog ({e.Message}).", e);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>Every layer, ordered by creation (parents before children).</summary>
    public List<Layer> List()
    {
        lock (_lock)
        {
            using SqliteCommand command = Command("SELECT id, parent, kind, state, created, capacity FROM layers ORDER BY seq");
            return ReadLayers(command);
        }
    }

    /// <summary>One layer, or null.</summary>
    public Layer? Find(string id)
    {
        lock (_lock)
        {
            using SqliteCommand command = Command("SELECT id, parent, kind, state, created, capacity FROM layers WHERE id = $id", ("$id", id));
            return ReadLayers(command).FirstOrDefault();
        }
    }

    /// <summary>The ids of a layer's children.</summary>
    public List<string> Children(string id)
    {
        lock (_lock)
        {
            using SqliteCommand command = Command("SELECT id FROM layers WHERE parent = $id ORDER BY seq", ("$id", id));
            using SqliteDataReader reader = command.ExecuteReader();
            var children = new List<string>();
            while (reader.Read())
            {
                children.Add(reader.GetString(0));
            }

            return children;
        }
    }

    /// <summary>The journal, oldest first.</summary>
    public List<PendingOperation> PendingOperations()
    {
        lock (_lock)
        {
            using SqliteCommand command = Command("SELECT seq, op, layer, argument, pid, started FROM operations ORDER BY seq");
            using SqliteDataReader reader = command.ExecuteReader();
            var operations = new List<PendingOperation>();
            while (reader.Read())
            {
                operations.Add(new PendingOperation(reader.GetInt64(0), reader.GetString(1), reader.GetString(2),
                    reader.IsDBNull(3) ? null : reader.GetString(3), reader.GetInt32(4),
                    DateTimeOffset.Parse(reader.GetString(5), CultureInfo.InvariantCulture)));
            }

            return operations;
        }
    }

    /// <summary>Runs <paramref name="work"/> in one transaction, committed when it returns.</summary>
    public T InTransaction<T>(Func<CatalogTransaction, T> work)
    {
        lock (_lock)
        {
            try
            {
                using SqliteTransaction transaction = _connection.BeginTransaction();
                T result = work(new CatalogTransaction(this, transaction));
                transaction.Commit();
                return result;
            }
            catch (SqliteException e) when (StoreSpace.IsNoSpace(e))
            {
                // The transaction rolled back: the catalog is as it was.
                string directory = Path.GetDirectoryName(_layersDirectory)!;
                throw new BlockDriverException(ErrorKind.NoSpace,
                    $"no space left on the store's file system ({StoreSpace.Describe(directory)}): the catalog cannot be written; nothing was changed. Free space and try again.", e);
            }
        }
    }

    /// <summary>Runs <paramref name="work"/> in one transaction, committed when it returns.</summary>
    public void InTransaction(Action<CatalogTransaction> work) => InTransaction(t =>
    {
        work(t);
        return 0;
    });

    /// <inheritdoc/>
    public void Dispose() => _connection.Dispose();

    private static void Execute(SqliteConnection connection, string sql, SqliteTransaction? transaction = null)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        command.ExecuteNonQuery();
    }

    private void CreateSchema()
    {
        lock (_lock)
        {
            using SqliteTransaction transaction = _connection.BeginTransaction();
            Execute(_connection, """
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS layers (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    parent TEXT REFERENCES layers(id),
                    kind TEXT NOT NULL CHECK (kind IN ('image', 'container', 'snapshot')),
                    state TEXT NOT NULL CHECK (state IN ('writable', 'sealed')),
                    created TEXT NOT NULL,
                    capacity INTEGER NOT NULL);
                CREATE INDEX IF NOT EXISTS layers_parent ON layers(parent);
                CREATE TABLE IF NOT EXISTS labels (
                    layer TEXT NOT NULL REFERENCES layers(id) ON DELETE CASCADE ON UPDATE CASCADE,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    PRIMARY KEY (layer, key));
                CREATE TABLE IF NOT EXISTS operations (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    op TEXT NOT NULL,
                    layer TEXT NOT NULL,
                    argument TEXT,
                    pid INTEGER NOT NULL,
                    started TEXT NOT NULL);
                """, transaction);
            using (SqliteCommand command = _connection.CreateCommand())
            {
                command.Transaction = transaction;
                command.CommandText = "INSERT OR IGNORE INTO meta (key, value) VALUES ('format', $format), ('version', $version)";
                command.Parameters.AddWithValue("$format", FormatName);
                command.Parameters.AddWithValue("$version", SchemaVersion.ToString(CultureInfo.InvariantCulture));
                command.ExecuteNonQuery();
            }

            transaction.Commit();
        }
    }

    private void CheckFormat(string path)
    {
        lock (_lock)
        {
            using SqliteCommand command = Command("SELECT value FROM meta WHERE key = 'format'");
            if (command.ExecuteScalar() as string != FormatName)
            {
                throw new BlockDriverException(ErrorKind.Corrupt, $"{path}: not a BlockDriver catalog (no format marker).");
            }

            using SqliteCommand version = Command("SELECT value FROM meta WHERE key = 'version'");
            if (version.ExecuteScalar() as string != SchemaVersion.ToString(CultureInfo.InvariantCulture))
            {
                throw new BlockDriverException(ErrorKind.Corrupt, $"{path}: catalog schema version {version.ExecuteScalar()} is not {SchemaVersion}.");
            }
        }
    }

    internal SqliteCommand Command(string sql, params (string Name, object? Value)[] parameters)
    {
        SqliteCommand command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach ((string name, object? value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    private List<Layer> ReadLayers(SqliteCommand command)
    {
        var rows = new List<(string Id, string? Parent, LayerKind Kind, LayerState State, DateTimeOffset Created, long Capacity)>();
        using (SqliteDataReader reader = command.ExecuteReader())
        {
            while (reader.Read())
            {
                rows.Add((reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1),
                    Enum.Parse<LayerKind>(reader.GetString(2), ignoreCase: true),
                    Enum.Parse<LayerState>(reader.GetString(3), ignoreCase: true),
                    DateTimeOffset.Parse(reader.GetString(4), CultureInfo.InvariantCulture), reader.GetInt64(5)));
            }
        }

        return [.. rows.Select(r => new Layer(r.Id, r.Parent, r.Kind, r.State, r.Created, r.Capacity, ReadLabels(r.Id),
            Path.Combine(_layersDirectory, r.Id + ".vhdx")))];
    }

    private Dictionary<string, string> ReadLabels(string id)
    {
        using SqliteCommand command = Command("SELECT key, value FROM labels WHERE layer = $id ORDER BY key", ("$id", id));
        using SqliteDataReader reader = command.ExecuteReader();
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        while (reader.Read())
        {
            labels[reader.GetString(0)] = reader.GetString(1);
        }

        return labels;
    }
}
