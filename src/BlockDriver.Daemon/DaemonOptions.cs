namespace BlockDriver.Daemon;

/// <summary>The daemon's settings, bound from configuration (later sources win): built-in defaults, the JSON file
/// (STORE/daemon.json, or the file <c>--config</c> names), environment variables with the prefix <c>BLOCKDRIVER_</c>
/// (<c>BLOCKDRIVER_Nbd__Socket</c> sets <c>Nbd:Socket</c>), then <c>--Key=value</c> command-line arguments. The
/// store directory comes from the command line's <c>--root</c> (or BLOCKDRIVER_ROOT), never from the file that lives
/// in it.</summary>
public sealed class DaemonOptions
{
    /// <summary>The store directory (absolute).</summary>
    public string Root { get; set; } = "";

    /// <summary>At start, after a daemon of this store died with layers mounted (STORE/run/mounts.json survived it),
    /// mount them again where they were, with their reference counts (true, the default), or only clean up what the
    /// dead daemon left and leave them unmounted (false).</summary>
    public bool Remount { get; set; } = true;

    /// <summary>How long a graceful stop (SIGTERM) may take before the host gives up waiting; unmounting everything
    /// goes on regardless. Default 2 minutes.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>The optional NBD server.</summary>
    public DaemonNbdOptions Nbd { get; set; } = new();
}
