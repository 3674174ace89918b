using BlockDriver.Abstractions;

namespace BlockDriver.Fuse;

/// <summary>A file of the flat root directory. <see cref="OpenCount"/> is guarded by the server's lock.</summary>
internal sealed class FuseNode(ulong nodeId, string name, IBlockDevice device)
{
    public ulong NodeId { get; } = nodeId;

    public string Name { get; } = name;

    public IBlockDevice Device { get; } = device;

    /// <summary>Unix time the file appeared; its atime, mtime and ctime.</summary>
    public long CreatedSeconds { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>Kernel file handles open on the file (OPEN minus RELEASE). Guarded by the server's lock.</summary>
    public int OpenCount { get; set; }

    /// <summary>Permission bits: rw-------, or r-------- for a read-only device (the mount has no allow_other: only the
    /// daemon's user, root, opens them, to attach loop devices).</summary>
    public uint Permissions => Device.IsReadOnly ? 0x100u : 0x180u;

    // At most one warning a minute per file: writes to blocks the layer holds already succeed on a full store while
    // new ones fail, so "until a write succeeds again" alone would warn on every other request.
    private static readonly long WarningInterval = (long)TimeSpan.FromMinutes(1).TotalMilliseconds;

    // 1 from a write that failed with ENOSPC until one succeeds again; guarded by Interlocked.
    private int _outOfSpace;

    // Environment.TickCount64 of the last warning, 0 for none; 1 when this run of failures was warned about.
    private long _warnedAt;
    private int _warned;

    /// <summary>Records a write that failed with ENOSPC; true when it deserves the warning: the first failure since
    /// the last successful write, and no warning about this file in the last minute.</summary>
    public bool MarkOutOfSpace()
    {
        if (Interlocked.Exchange(ref _outOfSpace, 1) != 0)
        {
            return false;
        }

        long now = Environment.TickCount64;
        long last = Interlocked.Read(ref _warnedAt);
        if (last != 0 && now - last < WarningInterval)
        {
            return false;
        }

        Interlocked.Exchange(ref _warnedAt, now);
        Volatile.Write(ref _warned, 1);
        return true;
    }

    /// <summary>Records a successful write; true when it ends a run of ENOSPC failures that was warned about.</summary>
    public bool MarkWritten() =>
        Volatile.Read(ref _outOfSpace) != 0 && Interlocked.Exchange(ref _outOfSpace, 0) == 1 && Interlocked.Exchange(ref _warned, 0) == 1;
}
