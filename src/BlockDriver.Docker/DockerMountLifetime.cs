using Microsoft.Extensions.Hosting;

namespace BlockDriver.Docker;

/// <summary>The hosted service around the plugin's lingering mounts (<see cref="GraphDriver.StartAsync"/> and
/// <see cref="GraphDriver.StopAsync"/>). Registered before <see cref="DockerPluginService"/>, so it starts after the
/// daemon's store recovered its mounts and before the socket serves dockerd, and stops after the socket closed (no
/// call in flight) and before the store unmounts the rest.</summary>
public sealed class DockerMountLifetime(GraphDriver driver) : IHostedService
{
    /// <inheritdoc/>
    public Task StartAsync(CancellationToken cancellationToken) => driver.StartAsync(cancellationToken);

    /// <inheritdoc/>
    public Task StopAsync(CancellationToken cancellationToken) => driver.StopAsync();
}
