namespace BlockDriver.Docker.Json;

/// <summary>The answer to GetMetadata: <c>docker inspect</c>'s GraphDriver.Data.</summary>
/// <param name="Metadata">Name/value pairs.</param>
public sealed record MetadataResponse(IReadOnlyDictionary<string, string> Metadata);
