using BlockDriver.Abstractions;
using BlockDriver.Interop;

namespace BlockDriver.Daemon;

/// <summary>One daemon per store: an exclusive lock (<see cref="FileLock"/>, OFD) on STORE/run/daemon.lock held for
/// the daemon's life (the kernel drops it when the process dies, however it dies), and the holder's pid in
/// STORE/run/daemon.pid. A second daemon is refused with the holder's pid. Disposing removes the pid
/// file and releases the lock.</summary>
internal sealed class DaemonLock : IDisposable
{
    private readonly FileLock _lock;
    private readonly string _pidPath;

    private DaemonLock(FileLock held, string pidPath)
    {
        _lock = held;
        _pidPath = pidPath;
    }

    /// <summary>Takes the lock of the store at <paramref name="root"/>.</summary>
    /// <exception cref="BlockDriverException">InUse when another daemon holds it; Unavailable when the lock file
    /// cannot be opened (or is a symbolic link).</exception>
    public static DaemonLock Acquire(string root)
    {
        string lockPath = AdminEndpoint.LockPath(root);
        string pidPath = AdminEndpoint.PidPath(root);
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        FileLock held;
        try
        {
            held = FileLock.Open(lockPath);
        }
        catch (IOException ex)
        {
            throw new BlockDriverException(ErrorKind.Unavailable, ex.Message, ex);
        }

        try
        {
            if (!held.TryLock(exclusive: true, out LockHolder? holder))
            {
                string pid = holder?.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)
                             ?? (File.Exists(pidPath) ? File.ReadAllText(pidPath).Trim() : "unknown");
                throw new BlockDriverException(ErrorKind.InUse, $"a daemon is already running for {root} (pid {pid}).");
            }

            File.WriteAllText(pidPath, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n");
        }
        catch
        {
            held.Dispose();
            throw;
        }

        return new DaemonLock(held, pidPath);
    }

    public void Dispose()
    {
        File.Delete(_pidPath);
        _lock.Dispose();
    }
}
