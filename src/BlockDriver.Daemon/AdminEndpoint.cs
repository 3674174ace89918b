using BlockDriver.Core;

namespace BlockDriver.Daemon;

/// <summary>Where a store's daemon listens, and the paths of its run-time files: all under STORE/run.</summary>
public static class AdminEndpoint
{
    /// <summary>The admin API's unix socket: STORE/run/admin.sock, mode 0600 (root only).</summary>
    public static string SocketPath(string root) => Path.Combine(new StorePaths(root).Run, "admin.sock");

    /// <summary>The lock a running daemon holds (an OFD lock, FileLock) for its whole life: STORE/run/daemon.lock.</summary>
    public static string LockPath(string root) => Path.Combine(new StorePaths(root).Run, "daemon.lock");

    /// <summary>The running daemon's process id, written once it holds the lock: STORE/run/daemon.pid.</summary>
    public static string PidPath(string root) => Path.Combine(new StorePaths(root).Run, "daemon.pid");

    /// <summary>The mounts the daemon made, rewritten after every change and removed after a clean stop:
    /// STORE/run/mounts.json. A file left at start means the previous daemon died with layers mounted.</summary>
    public static string StatePath(string root) => Path.Combine(new StorePaths(root).Run, "mounts.json");
}
