using BlockDriver.Mount;

namespace BlockDriver.Daemon;

/// <summary>The body of <c>POST /v1/mounts</c>.</summary>
/// <param name="Layer">The layer id to mount.</param>
/// <param name="Directory">The mount point, an absolute path (created if missing).</param>
/// <param name="ReadOnly">Mount read-only even if the layer is writable.</param>
/// <param name="SetUid">Let set-user-ID bits and file capabilities take effect (default: <c>nosuid</c>).</param>
/// <param name="Devices">Let device nodes open devices (default: <c>nodev</c>).</param>
public sealed record MountRequest(string? Layer, string? Directory, bool ReadOnly, bool SetUid = false, bool Devices = false)
{
    /// <summary>The privileges <see cref="SetUid"/> and <see cref="Devices"/> ask for.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public MountPrivileges Privileges =>
        (SetUid ? MountPrivileges.SetUid : MountPrivileges.None) | (Devices ? MountPrivileges.Devices : MountPrivileges.None);
}
