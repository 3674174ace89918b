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
}
