using BlockDriver.Daemon;

namespace BlockDriver.Cli.Commands.Daemon;

/// <summary>The front ends <c>blockdriver daemon</c> can host; each one serves only when its configuration section
/// enables it (<c>--docker</c> sets <c>Docker:Enabled</c>, <c>--containerd-socket</c> sets
/// <c>Containerd:Socket</c>).</summary>
internal static class DaemonModules
{
    /// <summary>Every module, in start order.</summary>
    public static IReadOnlyList<IDaemonModule> All { get; } =
    [
        new BlockDriver.Containerd.ContainerdModule(),
        new BlockDriver.Docker.DockerModule(),
    ];
}
