using System.Text.Json.Serialization;

namespace BlockDriver.Docker.Json;

/// <summary>One id map range of Init's UIDMaps/GIDMaps (snake_case, as Go's struct tags spell it).</summary>
public sealed class IdMapJson
{
    /// <summary>First id inside the container.</summary>
    [JsonPropertyName("container_id")]
    public long ContainerId { get; set; }

    /// <summary>First id on the host.</summary>
    [JsonPropertyName("host_id")]
    public long HostId { get; set; }

    /// <summary>How many ids.</summary>
    [JsonPropertyName("size")]
    public long Size { get; set; }
}
