namespace BlockDriver.Docker.Json;

/// <summary>The answer to Status: what <c>docker info</c> lists under the storage driver.</summary>
/// <param name="Status">Name/value pairs.</param>
public sealed record StatusResponse(IReadOnlyList<string[]> Status);
