namespace BlockDriver.Mount;

/// <summary>One layer mounted by a <see cref="LayerMounter"/>.</summary>
/// <param name="LayerId">The mounted layer.</param>
/// <param name="Directory">The mount point (absolute, no trailing slash).</param>
/// <param name="LoopDevice">The loop device the file system is on (/dev/loopN).</param>
/// <param name="FuseFile">The FUSE file the loop device reads and writes (STORE/run/fuse/LAYERID).</param>
/// <param name="ReadOnly">True for a read-only mount (<c>ro,noload</c>); false for read-write with <c>discard</c>.</param>
/// <param name="References">How many <see cref="LayerMounter.MountAsync(string, string, bool, CancellationToken)"/> calls are not yet matched by
/// <see cref="LayerMounter.UnmountAsync"/>.</param>
public sealed record MountInfo(string LayerId, string Directory, string LoopDevice, string FuseFile, bool ReadOnly, int References)
{
    /// <summary>What the mount grants beyond file contents; <see cref="MountPrivileges.None"/> is
    /// <c>nosuid,nodev</c>.</summary>
    public MountPrivileges Privileges { get; init; }
}
