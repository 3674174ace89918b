namespace BlockDriver.Docker.Json;

/// <summary>The answer to Get.</summary>
/// <param name="Dir">The mounted root of the layer (absolute).</param>
public sealed record DirResponse(string Dir);
