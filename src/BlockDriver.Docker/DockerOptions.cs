namespace BlockDriver.Docker;

/// <summary>The plugin's settings: the daemon configuration's <c>Docker</c> section (<c>"Docker": {"Enabled":
/// true}</c> in the daemon's JSON file, <c>--Docker:Socket=PATH</c>, <c>BLOCKDRIVER_Docker__Name=NAME</c>;
/// <c>blockdriver daemon --docker</c> sets <c>Docker:Enabled</c>).</summary>
public sealed class DockerOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Docker";

    /// <summary>The plugin's default name.</summary>
    public const string DefaultName = "blockdriver";

    /// <summary>Serve the plugin. Default false.</summary>
    public bool Enabled { get; set; }

    /// <summary>The plugin's name: what dockerd is started with (<c>--storage-driver NAME</c>) and the default
    /// socket's file name. Default <see cref="DefaultName"/>.</summary>
    public string Name { get; set; } = DefaultName;

    /// <summary>The plugin's unix socket; empty means <c>/run/docker/plugins/NAME.sock</c>, where dockerd's plugin
    /// discovery looks. Another path needs a spec file (<c>/etc/docker/plugins/NAME.spec</c> holding
    /// <c>unix:///that/path</c>).</summary>
    public string Socket { get; set; } = "";

    /// <summary>The virtual size of layers without a parent (Docker's bottom image layers, and so of every image
    /// and container over them), as Docker writes sizes: "10G", "512M", "20GB", bytes. Default 10G. A
    /// <c>size</c> storage option of a parentless CreateReadWrite overrides it for that layer.</summary>
    public string BaseSize { get; set; } = "10G";

    /// <summary>The socket path the settings give.</summary>
    public string SocketPath => Socket is { Length: > 0 } socket ? Path.GetFullPath(socket) : $"/run/docker/plugins/{Name}.sock";
}
