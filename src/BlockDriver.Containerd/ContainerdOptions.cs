using BlockDriver.Core;

namespace BlockDriver.Containerd;

/// <summary>The daemon's <c>Containerd</c> configuration section.</summary>
public sealed class ContainerdOptions
{
    /// <summary>The default socket: /run/blockdriver/containerd.sock.</summary>
    public const string DefaultSocket = "/run/blockdriver/containerd.sock";

    /// <summary>Serve the snapshotter on <see cref="DefaultSocket"/> when <see cref="Socket"/> is not set.</summary>
    public bool Enabled { get; set; }

    /// <summary>The unix socket containerd's <c>proxy_plugins</c> entry names (the CLI's <c>--containerd-socket</c>);
    /// setting it enables the snapshotter.</summary>
    public string? Socket { get; set; }

    /// <summary>The virtual size in bytes of every snapshot (of the base file system layer parentless snapshots are
    /// made over); default <see cref="LayerSpec.DefaultCapacity"/>, 10 GiB.</summary>
    public long Capacity { get; set; } = LayerSpec.DefaultCapacity;
}
