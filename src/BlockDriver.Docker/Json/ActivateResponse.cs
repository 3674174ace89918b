namespace BlockDriver.Docker.Json;

/// <summary>The answer to /Plugin.Activate.</summary>
/// <param name="Implements">The plugin APIs served: "GraphDriver".</param>
public sealed record ActivateResponse(IReadOnlyList<string> Implements);
