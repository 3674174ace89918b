using Microsoft.Extensions.Logging;

namespace BlockDriver.Daemon;

/// <summary>The daemon's log messages.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Daemon for {Root} ready: admin API on {Socket} (pid {Pid})")]
    public static partial void Ready(ILogger logger, string root, string socket, int pid);

    [LoggerMessage(2, LogLevel.Information, "Daemon for {Root} stopping: unmounting {Count} layer(s)")]
    public static partial void Stopping(ILogger logger, string root, int count);

    [LoggerMessage(3, LogLevel.Information, "Daemon for {Root} stopped cleanly")]
    public static partial void Stopped(ILogger logger, string root);

    [LoggerMessage(4, LogLevel.Error, "Stopping the daemon for {Root} left mounts behind; STORE/run/mounts.json keeps them for the next start")]
    public static partial void StopFailed(ILogger logger, Exception exception, string root);

    [LoggerMessage(5, LogLevel.Information, "Mounted layer {Layer} at {Directory} on {LoopDevice} ({Mode}, {References} reference(s))")]
    public static partial void Mounted(ILogger logger, string layer, string directory, string loopDevice, string mode, int references);

    [LoggerMessage(6, LogLevel.Information, "Unmounted {Directory} ({References} reference(s) left)")]
    public static partial void Unmounted(ILogger logger, string directory, int references);

    [LoggerMessage(7, LogLevel.Warning, "The previous daemon of {Root} did not stop cleanly; it had {Count} mount(s): cleaning up what it left")]
    public static partial void Recovering(ILogger logger, string root, int count);

    [LoggerMessage(8, LogLevel.Information, "Remounted layer {Layer} at {Directory} ({References} reference(s)) after the previous daemon died")]
    public static partial void Remounted(ILogger logger, string layer, string directory, int references);

    [LoggerMessage(9, LogLevel.Error, "Remounting layer {Layer} at {Directory} failed: {Error}; it stays unmounted")]
    public static partial void RemountFailed(ILogger logger, string layer, string directory, string error);

    [LoggerMessage(10, LogLevel.Warning, "Not remounting layer {Layer} at {Directory} (Remount=false); its data is in the layer")]
    public static partial void RemountSkipped(ILogger logger, string layer, string directory);

    [LoggerMessage(11, LogLevel.Warning, "Store {Root}: {Action}")]
    public static partial void Reconciled(ILogger logger, string root, string action);

    [LoggerMessage(12, LogLevel.Information, "NBD server for {Root} on {Socket}: exports {Exports}")]
    public static partial void NbdListening(ILogger logger, string root, string socket, string exports);

    [LoggerMessage(13, LogLevel.Debug, "Admin request {Method} {Path} -> {Status}")]
    public static partial void Request(ILogger logger, string method, string path, int status);

    [LoggerMessage(14, LogLevel.Warning, "Admin request {Method} {Path} failed ({Status}): {Error}")]
    public static partial void RequestFailed(ILogger logger, string method, string path, int status, string error);

    [LoggerMessage(15, LogLevel.Information, "Removed a stale socket {Socket} (nobody was serving it)")]
    public static partial void StaleSocketRemoved(ILogger logger, string socket);

    [LoggerMessage(16, LogLevel.Debug, "systemd notified: {State}")]
    public static partial void Notified(ILogger logger, string state);

    [LoggerMessage(17, LogLevel.Information, "{Name} listening on {Socket}")]
    public static partial void FrontEndListening(ILogger logger, string name, string socket);

    [LoggerMessage(18, LogLevel.Information, "Removing the stale socket {Socket}: nobody answers on it")]
    public static partial void StaleSocketFound(ILogger logger, string socket);

    [LoggerMessage(19, LogLevel.Warning, "Loop device {Device} of the previous daemon is still held (a container still running on its old mount?): it is marked for clearing and unbinds when that lets go. I/O through it has failed since the previous daemon died: restart that container")]
    public static partial void StaleDeviceHeld(ILogger logger, string device);

    [LoggerMessage(40, LogLevel.Warning, "Recording the mounts in {Path} failed ({Error}): the store's file system is full; the file keeps the previous list until the next mount or unmount, so a daemon started after a crash before then would remount what it lists")]
    public static partial void StateNotRecorded(ILogger logger, string path, string error);
}
