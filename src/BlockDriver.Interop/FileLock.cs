using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Interop;

/// <summary>A whole-file lock on a small lock file (the store's, a layer's, the daemon's, the base file system's):
/// an open-file-description lock (fcntl F_OFD_SETLK, Linux 3.15). The kernel releases it when the last descriptor
/// of the open file description closes, so a lock never outlives the process that took it.</summary>
/// <remarks>
/// <para>OFD locks belong to the open file description (one <see cref="Open"/>), not to the process: two
/// <see cref="FileLock"/>s on one file conflict even in one process (as flock does), while one
/// <see cref="FileLock"/> re-taking or converting its own lock (shared ↔ exclusive) never conflicts with itself.
/// Closing some other descriptor of the file does not drop the lock (the trap of POSIX record locks). They conflict
/// with POSIX record locks (lockf, F_SETLK) that other programs take on the same file, and not with flock.</para>
/// <para>The file is opened O_NOFOLLOW and created 0600: a symbolic link put in its place is refused, so a lock
/// file is never a way to open, create or lock another file.</para>
/// <para>F_OFD_GETLK reports no pid for an OFD holder (l_pid = -1), so <see cref="Holder"/> finds it in /proc: the
/// "lock:" lines of /proc/PID/fdinfo/FD name the device and inode each descriptor has locked.</para>
/// <para>Not thread-safe; callers serialise.</para>
/// </remarks>
internal sealed class FileLock : IDisposable
{
    // fcntl(2) commands (asm-generic/fcntl.h, x86-64 and arm64 alike): F_OFD_GETLK 36, F_OFD_SETLK 37. (F_OFD_SETLKW,
    // 38, would wait without a deadline; waits here poll F_OFD_SETLK until theirs.)
    private const int FOfdGetLk = 36;
    private const int FOfdSetLk = 37;
    private const short FRdLck = 0;
    private const short FWrLck = 1;
    private const short FUnLck = 2;

    private const int ORdWr = 0x2;
    private const int OCreat = 0x40;
    private const int ONoFollow = 0x20000;
    private const int OCloExec = 0x80000;
    private const uint Mode0600 = 0x180;

    // statx(2) of the descriptor itself: AT_EMPTY_PATH, STATX_INO; stx_ino u64 @32, stx_dev_major u32 @136,
    // stx_dev_minor u32 @140.
    private const int AtEmptyPath = 0x1000;
    private const uint StatxIno = 0x100;

    // Polling a contended lock: 1 ms doubling to 50 ms, so an uncontended handover costs little and a long wait
    // costs at most 20 wake-ups a second.
    private static readonly TimeSpan FirstPoll = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan LongestPoll = TimeSpan.FromMilliseconds(50);

    private readonly SafeFileHandle _handle;

    private FileLock(string path, SafeFileHandle handle)
    {
        Path = path;
        _handle = handle;
    }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>Opens (creating, mode 0600) the lock file; takes no lock.</summary>
    /// <exception cref="IOException">The file cannot be opened, or is a symbolic link (refused, not followed).</exception>
    public static FileLock Open(string path)
    {
        SafeFileHandle handle;
        int errno;
        do
        {
            handle = Libc.OpenHandle(path, ORdWr | OCreat | ONoFollow | OCloExec, Mode0600);
            errno = handle.IsInvalid ? Errno.Last : 0;
        }
        while (handle.IsInvalid && errno == Errno.EINTR);

        if (handle.IsInvalid)
        {
            handle.Dispose();
            throw new IOException(errno == Errno.ELOOP
                ? $"{path}: the lock file is a symbolic link; refusing to follow it."
                : $"{path}: opening the lock file failed: {Errno.Describe(errno)}.");
        }

        return new FileLock(path, handle);
    }

    /// <summary>Takes (or converts to) a shared or exclusive lock without waiting. Returns false and who holds a
    /// conflicting lock (null when it let go meanwhile or cannot be found) when another open file description does.</summary>
    public bool TryLock(bool exclusive, out LockHolder? holder)
    {
        bool taken = TrySet(exclusive);
        holder = taken ? null : Holder(exclusive);
        return taken;
    }

    /// <summary>Takes a shared or exclusive lock, waiting up to <paramref name="timeout"/> for the holders to let go
    /// (<see cref="Timeout.InfiniteTimeSpan"/>: no deadline). Returns whether it was taken and, if not, who held it
    /// at the deadline.</summary>
    public async Task<(bool Taken, LockHolder? Holder)> TryLockAsync(bool exclusive, TimeSpan timeout, CancellationToken ct = default)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan poll = FirstPoll;
        while (true)
        {
            if (TrySet(exclusive))
            {
                return (true, null);
            }

            // The holder is looked up once, at the deadline: finding an OFD lock's holder reads /proc.
            TimeSpan left = timeout == Timeout.InfiniteTimeSpan ? LongestPoll : timeout - clock.Elapsed;
            if (left <= TimeSpan.Zero)
            {
                LockHolder? holder = Holder(exclusive);
                return holder is null && TrySet(exclusive) ? (true, null) : (false, holder);
            }

            await Task.Delay(poll < left ? poll : left, ct).ConfigureAwait(false);
            poll = poll * 2 < LongestPoll ? poll * 2 : LongestPoll;
        }
    }

    /// <summary>Who holds a lock that conflicts with the given kind of lock, or null when nobody else does now (or the
    /// holder is not visible: another pid namespace, or /proc not readable).</summary>
    public LockHolder? Holder(bool exclusive)
    {
        var probe = new Flock { Type = exclusive ? FWrLck : FRdLck };
        if (Libc.Fcntl(_handle, FOfdGetLk, ref probe) != 0)
        {
            throw Failure("F_OFD_GETLK", Errno.Last);
        }

        if (probe.Type == FUnLck)
        {
            return null;
        }

        // A POSIX record lock names its process; an OFD lock says -1.
        int pid = probe.Pid > 0 ? probe.Pid : FindOfdHolder();
        return pid > 0 ? LockHolder.Of(pid) : null;
    }

    /// <summary>Drops this lock (the file stays open, for the next <see cref="TryLock"/>).</summary>
    public void Unlock()
    {
        var request = new Flock { Type = FUnLck };
        if (Libc.Fcntl(_handle, FOfdSetLk, ref request) != 0)
        {
            throw Failure("F_OFD_SETLK(F_UNLCK)", Errno.Last);
        }
    }

    /// <summary>Closes the descriptor, which releases the lock.</summary>
    public void Dispose() => _handle.Dispose();

    // F_OFD_SETLK: true when taken, false when another open file description holds a conflicting lock.
    private bool TrySet(bool exclusive)
    {
        var request = new Flock { Type = exclusive ? FWrLck : FRdLck };
        while (Libc.Fcntl(_handle, FOfdSetLk, ref request) != 0)
        {
            int errno = Errno.Last;
            if (errno == Errno.EINTR)
            {
                continue;
            }

            if (errno is Errno.EAGAIN or Errno.EACCES)
            {
                return false;
            }

            throw Failure("F_OFD_SETLK", errno);
        }

        return true;
    }

    private IOException Failure(string what, int errno) => new($"{Path}: fcntl({what}) failed: {Errno.Describe(errno)}.");

    // The first process with a descriptor of this file (by the name its /proc/PID/fd link shows) whose fdinfo lists a
    // lock on this device and inode, other than this lock itself; 0 when there is none.
    private unsafe int FindOfdHolder()
    {
        byte* stat = stackalloc byte[256];
        if (Libc.Statx((int)_handle.DangerousGetHandle(), "", AtEmptyPath, StatxIno, stat) != 0)
        {
            return 0;
        }

        ulong inode = *(ulong*)(stat + 32);
        uint major = *(uint*)(stat + 136);
        uint minor = *(uint*)(stat + 140);
        // fs/locks.c lock_get_status: "%02x:%02x:%lu" of MAJOR(s_dev), MINOR(s_dev) and i_ino.
        string key = string.Create(CultureInfo.InvariantCulture, $" {major:x2}:{minor:x2}:{inode} ");
        string suffix = "/" + System.IO.Path.GetFileName(Path);
        string self = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        string ownFd = ((int)_handle.DangerousGetHandle()).ToString(CultureInfo.InvariantCulture);

        foreach (string process in Directory.EnumerateDirectories("/proc"))
        {
            string name = System.IO.Path.GetFileName(process);
            if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            {
                continue;
            }

            try
            {
                foreach (string fd in Directory.EnumerateFileSystemEntries(process + "/fd"))
                {
                    string fdName = System.IO.Path.GetFileName(fd);
                    if ((name == self && fdName == ownFd) || new FileInfo(fd).LinkTarget?.EndsWith(suffix, StringComparison.Ordinal) != true)
                    {
                        continue;
                    }

                    foreach (string line in File.ReadLines($"{process}/fdinfo/{fdName}"))
                    {
                        if (line.StartsWith("lock:", StringComparison.Ordinal) && line.Contains(key, StringComparison.Ordinal))
                        {
                            return pid;
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The process exited (or closed the descriptor) while we looked, or is not ours to look at: it is not
                // the holder we can name.
            }
        }

        return 0;
    }

    // struct flock: short l_type; short l_whence; off_t l_start; off_t l_len; pid_t l_pid. l_whence = SEEK_SET,
    // l_start = 0 and l_len = 0 (to the end, however far) lock the whole file; OFD locks need l_pid = 0.
    [StructLayout(LayoutKind.Sequential)]
    internal struct Flock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Length;
        public int Pid;
    }
}
