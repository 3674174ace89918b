namespace BlockDriver.Docker.Json;

/// <summary>The body of /GraphDriver.Init (reference §5).</summary>
public sealed class InitRequest
{
    /// <summary>&lt;data-root&gt;/NAME: where a driver that keeps files beside dockerd's would keep them.</summary>
    public string? Home { get; set; }

    /// <summary>dockerd's <c>--storage-opt</c> strings ("key=value").</summary>
    public List<string>? Opts { get; set; }

    /// <summary>User namespace remapping of uids; null or empty without <c>--userns-remap</c>.</summary>
    public List<IdMapJson>? UIDMaps { get; set; }

    /// <summary>The same for gids.</summary>
    public List<IdMapJson>? GIDMaps { get; set; }
}
