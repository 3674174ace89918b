namespace BlockDriver.Mount;

/// <summary>Runs a blocking system call that may wait on this process's own FUSE server (mount, umount, syncfs, loop
/// attach and detach) on a thread of its own, never on a thread-pool thread.</summary>
/// <remarks>The FUSE server's request handlers finish on the thread pool (the layer's flush and its file I/O are
/// asynchronous). A umount that waits for the FUSE FSYNC of ext4's last journal write, run on a pool thread, holds that
/// thread until the FSYNC is answered; a few of those at once fill a small pool (two threads on a 2-core machine), and
/// the FSYNC's continuation then waits for the pool to add a thread, about one a second. Measured before this: a
/// <c>docker rm -f</c> of five running containers took 1–4 s, each Remove a whole number of seconds.</remarks>
public static class KernelCall
{
    /// <summary>Runs <paramref name="call"/> on a dedicated thread.</summary>
    public static Task RunAsync(Action call, CancellationToken ct = default) =>
        Task.Factory.StartNew(call, ct, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);

    /// <summary>Runs <paramref name="call"/> on a dedicated thread and returns its result.</summary>
    public static Task<T> RunAsync<T>(Func<T> call, CancellationToken ct = default) =>
        Task.Factory.StartNew(call, ct, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
}
