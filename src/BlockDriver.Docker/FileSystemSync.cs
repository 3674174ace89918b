using System.Runtime.InteropServices;
using BlockDriver.Abstractions;

namespace BlockDriver.Docker;

/// <summary>syncfs(2) of the file system mounted at a directory: what a Put does to a writable layer it leaves
/// mounted, so that what a stopped container wrote is on the layer's file before the mount lingers (the daemon's
/// death would otherwise lose the dirty pages the kernel still held for the file system).</summary>
internal static partial class FileSystemSync
{
    private const int ORdOnly = 0;
    private const int ODirectory = 0x10000;
    private const int OCloExec = 0x80000;

    /// <summary>Flushes the file system holding <paramref name="directory"/>.</summary>
    /// <exception cref="BlockDriverException">Unavailable when it cannot be opened or flushed (an I/O error of the
    /// layer is reported here).</exception>
    public static void Flush(string directory)
    {
        int fd = Open(directory, ORdOnly | ODirectory | OCloExec, 0);
        if (fd < 0)
        {
            throw new BlockDriverException(ErrorKind.Unavailable, $"opening {directory} to flush it failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        }

        try
        {
            if (SyncFs(fd) != 0)
            {
                throw new BlockDriverException(ErrorKind.Unavailable, $"flushing the file system at {directory} failed: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    private static partial int SyncFs(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
