using BlockDriver.Mount;

namespace BlockDriver.Daemon;

/// <summary>One mount as the admin API reports it (<c>GET /v1/mounts</c>, <c>POST /v1/mounts</c>) and as
/// STORE/run/mounts.json records it.</summary>
/// <param name="Layer">The mounted layer's id.</param>
/// <param name="Directory">The mount point (absolute).</param>
/// <param name="LoopDevice">The loop device the file system is on (/dev/loopN).</param>
/// <param name="FuseFile">The FUSE file behind the loop device (STORE/run/fuse/LAYER).</param>
/// <param name="ReadOnly">True for a read-only mount.</param>
/// <param name="References">Mount requests not yet matched by an unmount.</param>
public sealed record MountJson(string Layer, string Directory, string LoopDevice, string FuseFile, bool ReadOnly, int References)
{
    /// <summary>Set-user-ID bits and file capabilities take effect (the mount is not <c>nosuid</c>). Absent in a
    /// state file written before this field existed: false, the safe reading.</summary>
    public bool SetUid { get; init; }

    /// <summary>Device nodes open devices (the mount is not <c>nodev</c>). Absent: false.</summary>
    public bool Devices { get; init; }

    /// <summary>The privileges these two fields describe.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public MountPrivileges Privileges =>
        (SetUid ? MountPrivileges.SetUid : MountPrivileges.None) | (Devices ? MountPrivileges.Devices : MountPrivileges.None);

    /// <summary>The options that differ between mounts, as mount(8) lists them: "rw,nosuid,nodev", "ro".</summary>
    public string Options() => (ReadOnly ? "ro" : "rw") + (SetUid ? "" : ",nosuid") + (Devices ? "" : ",nodev");
}
