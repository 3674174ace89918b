using Microsoft.Extensions.Logging;

namespace BlockDriver.Docker;

/// <summary>The plugin's log messages.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Debug, "Docker {Method} {Id} -> {Status} in {Milliseconds} ms")]
    public static partial void Call(ILogger logger, string method, string id, int status, long milliseconds);

    [LoggerMessage(2, LogLevel.Warning, "Docker {Method} {Id} failed ({Status}): {Error}")]
    public static partial void CallFailed(ILogger logger, string method, string id, int status, string error);

    [LoggerMessage(3, LogLevel.Information, "Docker graphdriver plugin {Name} initialised by dockerd (home {Home}); layers live in the store {Root}")]
    public static partial void Initialized(ILogger logger, string name, string home, string root);

    [LoggerMessage(4, LogLevel.Information, "Sealed writable layer {Layer} to be the parent of {Child}; it is read-only from now on")]
    public static partial void SealedParent(ILogger logger, string layer, string child);

    [LoggerMessage(5, LogLevel.Warning, "Removing layer {Layer} that Get left mounted ({References} reference(s)): unmounting it first")]
    public static partial void RemovingMounted(ILogger logger, string layer, int references);

    [LoggerMessage(6, LogLevel.Warning, "Cleanup: dockerd is stopping with layer {Layer} still mounted ({References} reference(s)): unmounting it")]
    public static partial void CleanupUnmounting(ILogger logger, string layer, int references);

    [LoggerMessage(7, LogLevel.Debug, "Get {Layer}: mount label {Label} ignored (SELinux labels are not supported)")]
    public static partial void MountLabelIgnored(ILogger logger, string layer, string label);

    [LoggerMessage(8, LogLevel.Information, "Docker graphdriver plugin {Name}: dockerd finds it as --storage-driver {Name} --experimental (socket {Socket})")]
    public static partial void Serving(ILogger logger, string name, string socket);

    [LoggerMessage(9, LogLevel.Debug, "Put {Layer}: last reference; it stays mounted for {Seconds} s unless a Get takes it")]
    public static partial void Lingering(ILogger logger, string layer, double seconds);

    [LoggerMessage(10, LogLevel.Debug, "Get {Layer}: took over its lingering mount")]
    public static partial void ReusedLingering(ILogger logger, string layer);

    [LoggerMessage(11, LogLevel.Debug, "Unmounted lingering layer {Layer}")]
    public static partial void UnmountedLingering(ILogger logger, string layer);

    [LoggerMessage(12, LogLevel.Warning, "Unmounting lingering layer {Layer} failed: {Error}")]
    public static partial void LingeringUnmountFailed(ILogger logger, string layer, string error);

    [LoggerMessage(13, LogLevel.Information, "Layer {Layer} was lingering when the daemon died and was mounted again at start: unmounting it in {Seconds} s unless a Get takes it")]
    public static partial void RecoveredLingering(ILogger logger, string layer, double seconds);

    [LoggerMessage(14, LogLevel.Warning, "ApplyDiff {Layer} failed; the layer is back to empty as Create made it: {Error}")]
    public static partial void ApplyRolledBack(ILogger logger, string layer, string error);

    [LoggerMessage(15, LogLevel.Error, "ApplyDiff {Layer} failed and the layer could not be reverted to empty ({RevertError}); it keeps what was applied until it is removed: {Error}")]
    public static partial void ApplyRollbackFailed(ILogger logger, string layer, string revertError, string error);
}
