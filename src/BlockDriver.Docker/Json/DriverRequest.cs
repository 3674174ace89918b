namespace BlockDriver.Docker.Json;

/// <summary>The request body of every /GraphDriver.* call but Init and ApplyDiff (reference §5): absent keys are
/// empty; dockerd sends <c>{}</c> to Status, Capabilities and Cleanup.</summary>
public sealed class DriverRequest
{
    /// <summary>The layer.</summary>
    public string? ID { get; set; }

    /// <summary>Its parent ("" or absent: none).</summary>
    public string? Parent { get; set; }

    /// <summary>The SELinux label for mounts (Create, CreateReadWrite, Get); empty on hosts without SELinux.</summary>
    public string? MountLabel { get; set; }

    /// <summary><c>--storage-opt</c> values (CreateReadWrite): "size".</summary>
    public Dictionary<string, string>? StorageOpt { get; set; }
}
