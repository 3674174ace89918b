using BlockDriver.Abstractions;
using BlockDriver.Daemon;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace BlockDriver.Containerd;

/// <summary>The daemon module of the containerd snapshotter: enabled by <c>Containerd:Socket</c> (the CLI's
/// <c>--containerd-socket</c>) or <c>Containerd:Enabled=true</c> (socket <see cref="ContainerdOptions.DefaultSocket"/>);
/// <c>Containerd:Capacity</c> sets the snapshots' virtual size in bytes.</summary>
public sealed class ContainerdModule : IDaemonModule
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Containerd";

    /// <inheritdoc/>
    public void Configure(WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        IConfigurationSection section = builder.Configuration.GetSection(Section);
        var options = new ContainerdOptions();
        section.Bind(options);
        if (!options.Enabled && string.IsNullOrEmpty(options.Socket))
        {
            return;
        }

        if (options.Socket is { Length: > 0 } socket && !Path.IsPathFullyQualified(socket))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"Containerd:Socket {socket} must be an absolute path.");
        }

        if (options.Capacity <= 0 || options.Capacity % 512 != 0)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"Containerd:Capacity {options.Capacity} must be a positive multiple of 512 bytes.");
        }

        builder.Services.Configure<ContainerdOptions>(section);
        builder.Services.AddSingleton<ContainerdService>();
        builder.Services.AddHostedService(s => s.GetRequiredService<ContainerdService>());
        builder.Services.AddSingleton<ContainerdFrontEnd>();
        builder.Services.AddHostedService(s => s.GetRequiredService<ContainerdFrontEnd>());
    }
}
