namespace BlockDriver.Docker;

/// <summary>The layers whose last Put left them mounted for <see cref="DockerOptions.UnmountDelay"/> (see
/// <see cref="GraphDriver"/>): each has a pending unmount, which a Get cancels. The set is kept in a state file
/// (STORE/run/docker-NAME.lingering, one layer id a line) so that a daemon restarted after a crash, which makes the
/// recorded mounts again, knows which of them nobody holds.</summary>
/// <remarks>Thread-safe. The caller holds the layer's <see cref="LayerLocks"/> entry for every change of that layer's
/// state, so a pending unmount and a Get of one layer never overlap.</remarks>
internal sealed class LingeringMounts(string stateFile)
{
    private readonly Dictionary<string, CancellationTokenSource> _pending = new(StringComparer.Ordinal);

    /// <summary>The state file.</summary>
    public string StateFile { get; } = stateFile;

    /// <summary>How many layers linger.</summary>
    public int Count
    {
        get
        {
            lock (_pending)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>The lingering layers.</summary>
    public IReadOnlyList<string> Ids
    {
        get
        {
            lock (_pending)
            {
                return [.. _pending.Keys];
            }
        }
    }

    /// <summary>Whether <paramref name="id"/> lingers.</summary>
    public bool Contains(string id)
    {
        lock (_pending)
        {
            return _pending.ContainsKey(id);
        }
    }

    /// <summary>Records <paramref name="id"/> as lingering (replacing a pending unmount it had) and returns the token
    /// that <see cref="Remove"/> cancels: the pending unmount's.</summary>
    public CancellationToken Add(string id)
    {
        var pending = new CancellationTokenSource();
        lock (_pending)
        {
            if (_pending.Remove(id, out CancellationTokenSource? old))
            {
                old.Cancel();
                old.Dispose();
            }

            _pending.Add(id, pending);
            Save();
            return pending.Token;
        }
    }

    /// <summary>Whether <paramref name="token"/> is still the pending unmount of <paramref name="id"/> (no Get, no
    /// other unmount came first).</summary>
    public bool IsCurrent(string id, CancellationToken token)
    {
        lock (_pending)
        {
            return _pending.TryGetValue(id, out CancellationTokenSource? pending) && pending.Token == token && !token.IsCancellationRequested;
        }
    }

    /// <summary>Forgets <paramref name="id"/> and cancels its pending unmount; false when it did not linger.</summary>
    public bool Remove(string id)
    {
        lock (_pending)
        {
            if (!_pending.Remove(id, out CancellationTokenSource? pending))
            {
                return false;
            }

            pending.Cancel();
            pending.Dispose();
            Save();
            return true;
        }
    }

    /// <summary>The ids the state file lists (empty when there is none).</summary>
    public IReadOnlyList<string> ReadStateFile() =>
        File.Exists(StateFile) ? [.. File.ReadAllLines(StateFile).Where(l => l.Length > 0)] : [];

    // Under the dictionary's lock. Written whole and renamed into place, so a crash leaves the old or the new list.
    // No fsync: the file only matters after a daemon crash (the recorded mounts it qualifies are themselves gone after
    // a machine crash), and a lost update at worst keeps a mount until dockerd's Remove or Cleanup.
    private void Save()
    {
        if (_pending.Count == 0)
        {
            File.Delete(StateFile);
            return;
        }

        string temporary = StateFile + ".tmp";
        File.WriteAllLines(temporary, _pending.Keys);
        File.Move(temporary, StateFile, overwrite: true);
    }
}
