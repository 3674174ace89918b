namespace BlockDriver.Daemon;

/// <summary>One mount as the admin API reports it (<c>GET /v1/mounts</c>, <c>POST /v1/mounts</c>) and as
/// STORE/run/mounts.json records it.</summary>
/// <param name="Layer">The mounted layer's id.</param>
/// <param name="Directory">The mount point (absolute).</param>
/// <param name="LoopDevice">The loop device the file system is on (/dev/loopN).</param>
/// <param name="FuseFile">The FUSE file behind the loop device (STORE/run/fuse/LAYER).</param>
/// <param name="ReadOnly">True for a read-only mount.</param>
/// <param name="References">Mount requests not yet matched by an unmount.</param>
public sealed record MountJson(string Layer, string Directory, string LoopDevice, string FuseFile, bool ReadOnly, int References);
