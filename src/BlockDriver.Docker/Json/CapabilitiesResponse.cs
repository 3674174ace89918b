namespace BlockDriver.Docker.Json;

/// <summary>The answer to Capabilities (nested, as dockerd decodes it).</summary>
/// <param name="Capabilities">The capabilities.</param>
public sealed record CapabilitiesResponse(CapabilitiesJson Capabilities);
