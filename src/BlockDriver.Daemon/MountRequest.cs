namespace BlockDriver.Daemon;

/// <summary>The body of <c>POST /v1/mounts</c>.</summary>
/// <param name="Layer">The layer id to mount.</param>
/// <param name="Directory">The mount point, an absolute path (created if missing).</param>
/// <param name="ReadOnly">Mount read-only even if the layer is writable.</param>
public sealed record MountRequest(string? Layer, string? Directory, bool ReadOnly);
