using BlockDriver.Abstractions;
using BlockDriver.Daemon;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace BlockDriver.Docker;

/// <summary>The daemon module of the Docker graphdriver plugin: when the configuration's <c>Docker:Enabled</c> is
/// true (<c>blockdriver daemon --docker</c>), registers <see cref="DockerPluginService"/> with the
/// <see cref="DockerOptions"/> read from the <c>Docker</c> section.</summary>
public sealed class DockerModule : IDaemonModule
{
    /// <inheritdoc/>
    public void Configure(WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = new DockerOptions();
        try
        {
            builder.Configuration.GetSection(DockerOptions.Section).Bind(options);
        }
        catch (InvalidOperationException ex)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"Docker settings: {ex.Message}", ex);
        }

        if (!options.Enabled)
        {
            return;
        }

        // The name is a file name in /run/docker/plugins and what dockerd's --storage-driver gives.
        if (options.Name.Length is 0 or > 64 || !options.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.') || !char.IsAsciiLetterOrDigit(options.Name[0]))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"Docker:Name \"{options.Name}\" is not a plugin name: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit.");
        }

        _ = DockerSize.Parse(options.BaseSize, "Docker:BaseSize");
        _ = options.ParseUnmountDelay();
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton<GraphDriver>();

        // In this order: the lingering mounts are taken care of before the socket serves dockerd and after it stopped.
        builder.Services.AddHostedService<DockerMountLifetime>();
        builder.Services.AddSingleton<DockerPluginService>();
        builder.Services.AddHostedService(s => s.GetRequiredService<DockerPluginService>());
    }
}
