namespace BlockDriver.Mount;

/// <summary>What a mounted layer's file system may grant beyond its files' contents: the set-user-ID and
/// set-group-ID bits and file capabilities (absent: <c>nosuid</c>) and device nodes (absent: <c>nodev</c>).</summary>
/// <remarks>A layer's content comes from images nobody on the host wrote and from containers whose root is not
/// trusted, so a mount anyone on the host could reach carries neither: a setuid-root binary or a device node placed in
/// a layer must not become a way to root or to raw disks for a local user. Container root file systems need both
/// (sudo, ping, and images that ship device nodes); the Docker plugin and the containerd snapshotter ask for
/// <see cref="All"/> and mount under the store's own 0700 directories, where no local user can reach them.</remarks>
[Flags]
public enum MountPrivileges
{
    /// <summary><c>nosuid,nodev</c>: the default of mounts an admin asks for at a directory of their own.</summary>
    None = 0,

    /// <summary>Set-user-ID/set-group-ID bits and file capabilities take effect (no <c>nosuid</c>).</summary>
    SetUid = 1,

    /// <summary>Device nodes open devices (no <c>nodev</c>).</summary>
    Devices = 2,

    /// <summary>Both: what a container's root file system needs.</summary>
    All = SetUid | Devices,
}
