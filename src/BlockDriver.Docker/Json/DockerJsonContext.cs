using System.Text.Json.Serialization;

namespace BlockDriver.Docker.Json;

/// <summary>The plugin API's JSON: property names as Go spells them (ID, Parent, Err, Dir…), read
/// case-insensitively as Go's encoding/json does; unknown properties are ignored.</summary>
[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true, WriteIndented = false)]
[JsonSerializable(typeof(DriverRequest))]
[JsonSerializable(typeof(InitRequest))]
[JsonSerializable(typeof(ErrResponse))]
[JsonSerializable(typeof(ActivateResponse))]
[JsonSerializable(typeof(DirResponse))]
[JsonSerializable(typeof(ExistsResponse))]
[JsonSerializable(typeof(StatusResponse))]
[JsonSerializable(typeof(ChangesResponse))]
[JsonSerializable(typeof(SizeResponse))]
[JsonSerializable(typeof(MetadataResponse))]
[JsonSerializable(typeof(CapabilitiesResponse))]
[JsonSerializable(typeof(EmptyResponse))]
public sealed partial class DockerJsonContext : JsonSerializerContext;
