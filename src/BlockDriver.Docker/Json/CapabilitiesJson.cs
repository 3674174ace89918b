namespace BlockDriver.Docker.Json;

/// <summary>The driver's capabilities.</summary>
/// <param name="ReproducesExactDiffs">Whether Diff reproduces the applied tar byte for byte (false: dockerd keeps
/// tar-split data and rebuilds image tars itself through Get).</param>
public sealed record CapabilitiesJson(bool ReproducesExactDiffs);
