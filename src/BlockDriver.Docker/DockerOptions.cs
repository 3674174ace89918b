using System.Globalization;
using BlockDriver.Abstractions;

namespace BlockDriver.Docker;

/// <summary>The plugin's settings: the daemon configuration's <c>Docker</c> section (<c>"Docker": {"Enabled":
/// true}</c> in the daemon's JSON file, <c>--Docker:Socket=PATH</c>, <c>BLOCKDRIVER_Docker__Name=NAME</c>;
/// <c>blockdriver daemon --docker</c> sets <c>Docker:Enabled</c>).</summary>
public sealed class DockerOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Docker";

    /// <summary>The longest <see cref="UnmountDelay"/>, in seconds (an hour).</summary>
    public const int MaxUnmountDelaySeconds = 3600;

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

    /// <summary>How long a layer stays mounted after the Put that dropped its last reference, so that a Get soon after
    /// (dockerd mounts a container's layer at create and again at start) finds it mounted: seconds, as <c>5</c>,
    /// <c>0.5</c>, <c>5s</c> or <c>500ms</c>. <c>0</c> unmounts at the last Put. Default 5 s. Anything that needs the
    /// layer unmounted (Remove, making it a parent, ApplyDiff, Cleanup, the daemon's stop) unmounts it at once.</summary>
    public string UnmountDelay { get; set; } = "5s";

    /// <summary>The socket path the settings give.</summary>
    public string SocketPath => Socket is { Length: > 0 } socket ? Path.GetFullPath(socket) : $"/run/docker/plugins/{Name}.sock";

    /// <summary><see cref="UnmountDelay"/> as a time span.</summary>
    /// <exception cref="BlockDriverException">InvalidArgument when it is no delay of 0 to 3600 seconds.</exception>
    public TimeSpan ParseUnmountDelay()
    {
        string text = UnmountDelay.Trim();
        double scale = 1;
        if (text.EndsWith("ms", StringComparison.OrdinalIgnoreCase))
        {
            (text, scale) = (text[..^2], 0.001);
        }
        else if (text.EndsWith('s') || text.EndsWith('S'))
        {
            text = text[..^1];
        }

        return double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value) && value * scale <= MaxUnmountDelaySeconds
            ? TimeSpan.FromSeconds(value * scale)
            : throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"Docker:UnmountDelay \"{UnmountDelay}\" is not a delay: give seconds from 0 to {MaxUnmountDelaySeconds} (5, 0.5, 5s, 500ms; 0 unmounts at the last Put).");
    }
}
