using Microsoft.Extensions.Logging;

namespace BlockDriver.Fuse;

/// <summary>The FUSE server's log messages.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "FUSE mounted at {MountPoint}: connection {Connection}, protocol 7.{Minor}, max_write {MaxWrite}, {Threads} reader threads")]
    public static partial void Mounted(ILogger logger, string mountPoint, int connection, uint minor, uint maxWrite, int threads);

    [LoggerMessage(2, LogLevel.Information, "FUSE unmounted from {MountPoint}")]
    public static partial void Unmounted(ILogger logger, string mountPoint);

    [LoggerMessage(3, LogLevel.Warning, "FUSE mount {MountPoint} is busy ({Reason}); detaching it lazily")]
    public static partial void UnmountBusy(ILogger logger, string mountPoint, string reason);

    [LoggerMessage(4, LogLevel.Warning, "FUSE connection {Connection} of {MountPoint} did not end; aborted it")]
    public static partial void Aborted(ILogger logger, int connection, string mountPoint);

    [LoggerMessage(5, LogLevel.Warning, "Cleaned a stale FUSE mount ({FsType}) at {MountPoint} whose server is gone")]
    public static partial void StaleMountCleaned(ILogger logger, string fsType, string mountPoint);

    [LoggerMessage(6, LogLevel.Debug, "FUSE opcode {Opcode} on node {NodeId} refused with errno {Errno}: {Message}")]
    public static partial void RequestRefused(ILogger logger, uint opcode, ulong nodeId, int errno, string message);

    [LoggerMessage(7, LogLevel.Warning, "FUSE opcode {Opcode} on node {NodeId} failed with errno {Errno}")]
    public static partial void RequestFailed(ILogger logger, Exception exception, uint opcode, ulong nodeId, int errno);

    [LoggerMessage(8, LogLevel.Warning, "Writing a FUSE reply failed: {Error}")]
    public static partial void ReplyFailed(ILogger logger, string error);

    [LoggerMessage(9, LogLevel.Warning, "FUSE reader stopped: {Error}")]
    public static partial void ReaderFailed(ILogger logger, string error);

    [LoggerMessage(10, LogLevel.Warning, "Malformed FUSE request ({Length} bytes, opcode {Opcode}) ignored")]
    public static partial void Malformed(ILogger logger, int length, uint opcode);

    [LoggerMessage(11, LogLevel.Information, "FUSE file {Name} added ({Length} bytes)")]
    public static partial void FileAdded(ILogger logger, string name, long length);

    [LoggerMessage(12, LogLevel.Information, "FUSE file {Name} removed")]
    public static partial void FileRemoved(ILogger logger, string name);

    [LoggerMessage(13, LogLevel.Error, "FUSE teardown of {MountPoint}: {Problem}")]
    public static partial void TeardownProblem(ILogger logger, string mountPoint, string problem);

    [LoggerMessage(14, LogLevel.Warning, "Writes to {Name} fail: no space left on the store's file system ({Directory}: {FreeSpace}); the file system on it sees I/O errors until space is freed")]
    public static partial void OutOfSpace(ILogger logger, string name, string directory, string freeSpace);

    [LoggerMessage(15, LogLevel.Information, "Writes to {Name} succeed again after running out of space")]
    public static partial void SpaceAgain(ILogger logger, string name);
}
