using Microsoft.Extensions.Logging;

namespace BlockDriver.Mount;

/// <summary>The mounter's log messages.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Warning, "Layer {LayerId} at {Directory}: flushing its file system failed ({Error}); the writes it still held are lost (the layer's device failed writes, most often because the store's file system was full); unmounting it anyway")]
    public static partial void FlushFailed(ILogger logger, string layerId, string directory, string error);
}
