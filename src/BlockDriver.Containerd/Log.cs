using Microsoft.Extensions.Logging;

namespace BlockDriver.Containerd;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Debug, "Created {Kind} snapshot {Key} as layer {LayerId} on {Device}")]
    public static partial void Created(ILogger logger, string kind, string key, string layerId, string device);

    [LoggerMessage(2, LogLevel.Debug, "Committed snapshot {Key} as {Name} (layer {LayerId})")]
    public static partial void Committed(ILogger logger, string key, string name, string layerId);

    [LoggerMessage(3, LogLevel.Debug, "Removed snapshot {Key} (layer {LayerId})")]
    public static partial void Removed(ILogger logger, string key, string layerId);

    [LoggerMessage(4, LogLevel.Warning, "Snapshot {Key} is removed, but removing its layer {LayerId} failed ({Reason}); Cleanup and the next start retry")]
    public static partial void RemoveDeferred(ILogger logger, string key, string layerId, string reason);

    [LoggerMessage(5, LogLevel.Information, "Attached snapshot {Key} (layer {LayerId}) again as {Device}")]
    public static partial void Reattached(ILogger logger, string key, string layerId, string device);

    [LoggerMessage(6, LogLevel.Warning, "Attaching snapshot {Key} (layer {LayerId}) again failed: {Reason}; Mounts retries")]
    public static partial void ReattachFailed(ILogger logger, string key, string layerId, string reason);

    [LoggerMessage(7, LogLevel.Warning, "Layer {LayerId} ({Device}) could not be detached at stop: {Reason}")]
    public static partial void DetachAtStopFailed(ILogger logger, string layerId, string device, string reason);

    [LoggerMessage(8, LogLevel.Information, "Cleanup of layer {LayerId}: {What}")]
    public static partial void CleanedUp(ILogger logger, string layerId, string what);

    [LoggerMessage(11, LogLevel.Debug, "Committed mounted snapshot {Key} as {Name} (layer {LayerId}); its layer {RetiredLayerId} serves the old mount until it is unmounted")]
    public static partial void CommittedMounted(ILogger logger, string key, string name, string layerId, string retiredLayerId);

    [LoggerMessage(12, LogLevel.Debug, "Removed layer {LayerId}, retired by a commit of a mounted snapshot")]
    public static partial void RetiredRemoved(ILogger logger, string layerId);

    [LoggerMessage(9, LogLevel.Debug, "{Method} failed with {Code}: {Message}")]
    public static partial void RequestFailed(ILogger logger, string method, string code, string message);

    [LoggerMessage(10, LogLevel.Error, "{Method} failed unexpectedly")]
    public static partial void RequestCrashed(ILogger logger, Exception exception, string method);
}
