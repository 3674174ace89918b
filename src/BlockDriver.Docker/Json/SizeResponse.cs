namespace BlockDriver.Docker.Json;

/// <summary>The answer to ApplyDiff and DiffSize.</summary>
/// <param name="Size">Bytes (see the endpoint).</param>
public sealed record SizeResponse(long Size);
