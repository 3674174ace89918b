using Microsoft.Extensions.Logging;

namespace BlockDriver.Nbd;

/// <summary>Every log message of the NBD server: Information for lifecycle, Debug per connection and request.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "NBD server listening on {Endpoint} with exports {Exports}")]
    public static partial void Listening(ILogger logger, string endpoint, string exports);

    [LoggerMessage(2, LogLevel.Information, "NBD server stopping: {Connections} connections open")]
    public static partial void Stopping(ILogger logger, int connections);

    [LoggerMessage(3, LogLevel.Information, "NBD server stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(4, LogLevel.Debug, "{Peer}: connected")]
    public static partial void Accepted(ILogger logger, string peer);

    [LoggerMessage(5, LogLevel.Warning, "{Peer}: refused, {Limit} connections are already open")]
    public static partial void TooManyConnections(ILogger logger, string peer, int limit);

    [LoggerMessage(6, LogLevel.Warning, "Accepting a connection failed")]
    public static partial void AcceptFailed(ILogger logger, Exception exception);

    [LoggerMessage(7, LogLevel.Debug, "{Peer}: handshake ended: {Reason}")]
    public static partial void HandshakeEnded(ILogger logger, string peer, string reason);

    [LoggerMessage(8, LogLevel.Debug, "{Peer}: handshake timed out")]
    public static partial void HandshakeTimedOut(ILogger logger, string peer);

    [LoggerMessage(9, LogLevel.Debug, "{Peer}: option {Option} with {Length} bytes")]
    public static partial void Option(ILogger logger, string peer, uint option, uint length);

    [LoggerMessage(10, LogLevel.Debug, "{Peer}: option {Option} refused with 0x{Error:x8}: {Message}")]
    public static partial void OptionRefused(ILogger logger, string peer, uint option, uint error, string message);

    [LoggerMessage(11, LogLevel.Debug, "{Peer}: serving export '{Export}' (structured replies {Structured}, base:allocation {Contexts})")]
    public static partial void Negotiated(ILogger logger, string peer, string export, bool structured, bool contexts);

    [LoggerMessage(12, LogLevel.Warning, "Export '{Export}' could not be opened")]
    public static partial void ExportOpenFailed(ILogger logger, string export, Exception exception);

    [LoggerMessage(13, LogLevel.Debug, "{Peer}: command {Type} flags 0x{Flags:x4} offset {Offset} length {Length}")]
    public static partial void Request(ILogger logger, string peer, ushort type, ushort flags, ulong offset, uint length);

    [LoggerMessage(14, LogLevel.Debug, "{Peer}: command {Type} [{Offset}, +{Length}) failed with {Errno}: {Message}")]
    public static partial void RequestFailed(ILogger logger, string peer, ushort type, ulong offset, uint length, NbdErrno errno, string message);

    [LoggerMessage(15, LogLevel.Warning, "{Peer}: command {Type} [{Offset}, +{Length}) failed unexpectedly, replied {Errno}")]
    public static partial void RequestFailedUnexpectedly(ILogger logger, string peer, ushort type, ulong offset, uint length, NbdErrno errno, Exception exception);

    [LoggerMessage(16, LogLevel.Information, "{Peer}: protocol violation, closing: {What}")]
    public static partial void ProtocolViolation(ILogger logger, string peer, string what);

    [LoggerMessage(17, LogLevel.Debug, "{Peer}: closed the connection")]
    public static partial void ClientClosed(ILogger logger, string peer);

    [LoggerMessage(18, LogLevel.Debug, "{Peer}: sent NBD_CMD_DISC")]
    public static partial void ClientDisconnected(ILogger logger, string peer);

    [LoggerMessage(19, LogLevel.Debug, "{Peer}: receive failed")]
    public static partial void ReceiveFailed(ILogger logger, string peer, Exception exception);

    [LoggerMessage(20, LogLevel.Debug, "{Peer}: send failed; dropping the connection")]
    public static partial void SendFailed(ILogger logger, string peer, Exception exception);

    [LoggerMessage(21, LogLevel.Error, "{Peer}: connection failed unexpectedly")]
    public static partial void ConnectionFailed(ILogger logger, string peer, Exception exception);

    [LoggerMessage(22, LogLevel.Warning, "Closing export '{Export}' failed")]
    public static partial void ExportCloseFailed(ILogger logger, string export, Exception exception);

    [LoggerMessage(23, LogLevel.Information, "Attached export '{Export}' to {Device}")]
    public static partial void KernelAttached(ILogger logger, string export, string device);

    [LoggerMessage(24, LogLevel.Information, "Detached {Device}")]
    public static partial void KernelDetached(ILogger logger, string device);

    [LoggerMessage(25, LogLevel.Warning, "{Peer}: a reply has not been read for {Seconds:0.0} s (send timeout); closing the connection and freeing its {Bytes} buffered bytes")]
    public static partial void SendTimedOut(ILogger logger, string peer, double seconds, long bytes);

    [LoggerMessage(26, LogLevel.Information, "{Peer}: no request for {Seconds:0.0} s (idle timeout); closing the connection")]
    public static partial void IdleTimedOut(ILogger logger, string peer, double seconds);

    [LoggerMessage(27, LogLevel.Warning, "NBD server stopping: {Connections} connections did not finish within {Seconds:0.0} s; closing them, their replies are lost")]
    public static partial void StopDeadlinePassed(ILogger logger, int connections, double seconds);

    [LoggerMessage(28, LogLevel.Warning, "NBD server stopping: {Connections} connections are still running device requests {Seconds:0.0} s after they were closed; the exports stay open")]
    public static partial void ConnectionsStillRunning(ILogger logger, int connections, double seconds);

    [LoggerMessage(29, LogLevel.Warning, "NBD server stop cut short by the caller's deadline; closed {Connections} connections")]
    public static partial void StopCutShort(ILogger logger, int connections);

    [LoggerMessage(30, LogLevel.Warning, "NBD on TCP {Endpoint} is not limited to this host and has no authentication or encryption here: anyone who can connect can read every export and write every writable one")]
    public static partial void UnauthenticatedTcp(ILogger logger, string endpoint);

    [LoggerMessage(31, LogLevel.Debug, "{Peer}: closing the connection")]
    public static partial void Aborting(ILogger logger, string peer);

    [LoggerMessage(90, LogLevel.Warning, "{Peer}: writes to export '{Export}' fail: no space left on the store's file system ({Message}); further failures of this connection are logged at Debug")]
    public static partial void OutOfSpace(ILogger logger, string peer, string export, string message);
}
