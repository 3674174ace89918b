using BlockDriver.Abstractions;

namespace BlockDriver.Daemon;

/// <summary>One daemon per store: an exclusive flock on STORE/run/daemon.lock held for the daemon's life (the kernel
/// drops it when the process dies, however it dies), and the holder's pid in STORE/run/daemon.pid for the message
/// a second daemon gives. Disposing removes the pid file and releases the lock.</summary>
internal sealed class DaemonLock : IDisposable
{
    private readonly FileStream _lock;
    private readonly string _pidPath;

    private DaemonLock(FileStream held, string pidPath)
    {
        _lock = held;
        _pidPath = pidPath;
    }

    /// <summary>Takes the lock of the store at <paramref name="root"/>.</summary>
    /// <exception cref="BlockDriverException">InUse when another daemon holds it.</exception>
    public static DaemonLock Acquire(string root)
    {
        string lockPath = AdminEndpoint.LockPath(root);
        string pidPath = AdminEndpoint.PidPath(root);
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        FileStream held;
        try
        {
            // On Unix, FileShare.None is flock(LOCK_EX | LOCK_NB): a second opener fails at once.
            held = new FileStream(lockPath, new FileStreamOptions
            {
                Mode = FileMode.OpenOrCreate,
                Access = FileAccess.ReadWrite,
                Share = FileShare.None,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
        }
        catch (IOException ex) when (File.Exists(lockPath))
        {
            string pid = File.Exists(pidPath) ? File.ReadAllText(pidPath).Trim() : "unknown";
            throw new BlockDriverException(ErrorKind.InUse, $"a daemon is already running for {root} (pid {pid}).", ex);
        }

        try
        {
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
