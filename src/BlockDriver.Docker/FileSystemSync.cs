using BlockDriver.Abstractions;
using BlockDriver.Interop;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Docker;

/// <summary>syncfs(2) of the file system mounted at a directory: what a Put does to a writable layer it leaves
/// mounted, so that what a stopped container wrote is on the layer's file before the mount lingers (the daemon's
/// death would otherwise lose the dirty pages the kernel still held for the file system).</summary>
internal static class FileSystemSync
{
    private const int ORdOnly = 0;
    private const int ODirectory = 0x10000;
    private const int OCloExec = 0x80000;

    /// <summary>Flushes the file system holding <paramref name="directory"/>.</summary>
    /// <exception cref="BlockDriverException">Unavailable when it cannot be opened or flushed (an I/O error of the
    /// layer is reported here).</exception>
    public static void Flush(string directory)
    {
        using SafeFileHandle handle = Libc.OpenHandle(directory, ORdOnly | ODirectory | OCloExec, 0);
        if (handle.IsInvalid)
        {
            throw OsError.Last("opening to flush", directory, ErrorKind.Unavailable);
        }

        if (Libc.SyncFs(handle) != 0)
        {
            throw OsError.Last("flushing the file system at", directory, ErrorKind.Unavailable);
        }
    }
}
