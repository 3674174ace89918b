using BlockDriver.Interop;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>A temp dir for one plugin test: an empty store (STORE), the plugin socket (SOCK) and a way to run the
/// real <c>blockdriver --root STORE daemon --docker --Docker:Socket=SOCK</c> with 256 MiB layers. Disposing closes the
/// clients and cleans up as <see cref="DaemonTestDirectory"/> does.</summary>
internal sealed class PluginTestStore : DaemonTestDirectory
{
    public const string BaseSize = "256M";
    public const long Capacity = 256L << 20;
    private readonly List<PluginClient> _clients = [];

    private PluginTestStore(ITestOutputHelper output)
        : base("dockertest", output)
    {
    }

    public string SocketPath => Dir("plugin.sock");

    public static PluginTestStore Create(ITestOutputHelper output) => new(output);

    /// <summary>Starts the daemon with the plugin (Debug logging for it) and waits until it is ready. The last Put
    /// unmounts at once (<c>Docker:UnmountDelay=0</c>) unless <paramref name="args"/> set another delay (the lingering
    /// mount tests; the end-to-end tests run with the default).</summary>
    public DaemonProcess StartDaemon(params string[] args) =>
        StartDaemonProcess(["--docker", $"--Docker:Socket={SocketPath}", $"--Docker:BaseSize={BaseSize}",
            "--Logging:LogLevel:BlockDriver.Docker=Debug", "--Docker:UnmountDelay=0", .. args]);

    /// <summary>A client of the plugin socket, disposed with the store.</summary>
    public PluginClient Client()
    {
        var client = new PluginClient(SocketPath);
        _clients.Add(client);
        return client;
    }

    /// <summary>The file system mounts (not the FUSE mount) under the store's mnt/ directory.</summary>
    public IReadOnlyList<string> LayerMounts() =>
        [.. MountInfoEntry.ReadAll().Where(e => e.MountPoint.StartsWith(Root + "/mnt/", StringComparison.Ordinal)).Select(e => e.MountPoint)];

    /// <summary>Stops the daemon with SIGTERM, checks it exited cleanly, removed the plugin socket and left nothing
    /// mounted or attached.</summary>
    public async Task StopAndCheckAsync(DaemonProcess daemon)
    {
        Assert.Equal(0, await daemon.TerminateAsync());
        Assert.False(File.Exists(SocketPath), "the plugin socket outlived the daemon");
        Assert.Empty(Leftovers());
    }

    public override async ValueTask DisposeAsync()
    {
        foreach (PluginClient client in _clients)
        {
            client.Dispose();
        }

        await base.DisposeAsync();
    }
}
