using Microsoft.AspNetCore.Builder;

namespace BlockDriver.Daemon;

/// <summary>
/// A front end the daemon can host beside its admin API, such as the Docker graphdriver plugin or the containerd
/// snapshotter. The CLI's <c>daemon</c> command passes the modules it knows to <see cref="DaemonHost.Build"/>; each
/// one reads its own configuration section and, when that enables it, registers its services.
/// </summary>
/// <remarks>Hosted services registered here start after the <see cref="StoreService"/> (so the store is open) and
/// stop before it (so nothing is mid-request when the store unmounts everything). A module that listens on a socket
/// of its own derives its hosted service from <see cref="SocketFrontEnd"/>.</remarks>
public interface IDaemonModule
{
    /// <summary>Registers the module's services on <paramref name="builder"/> if its configuration
    /// (<c>builder.Configuration</c>) enables it; does nothing otherwise.</summary>
    /// <exception cref="Abstractions.BlockDriverException">InvalidArgument for settings that cannot work.</exception>
    void Configure(WebApplicationBuilder builder);
}
