namespace BlockDriver.Docker.Json;

/// <summary>One entry of Changes.</summary>
/// <param name="Path">Absolute inside the layer's root ("/etc/hosts").</param>
/// <param name="Kind">0 modified, 1 added, 2 deleted (Docker's archive.ChangeType).</param>
public sealed record ChangeJson(string Path, int Kind);
