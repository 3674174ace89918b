namespace BlockDriver.Docker.Json;

/// <summary>The answer to Exists.</summary>
/// <param name="Exists">Whether the store has the layer.</param>
public sealed record ExistsResponse(bool Exists);
