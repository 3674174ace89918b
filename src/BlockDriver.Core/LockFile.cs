using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Core;

/// <summary>A POSIX record lock (fcntl F_SETLK, whole file) on a small file under run/locks. The kernel releases it
/// when the process dies, so a lock never outlives its owner, and F_GETLK names the pid of a holder, which is what
/// the "in use by pid N" errors print.</summary>
/// <remarks>
/// <para>POSIX locks belong to the process, not the descriptor: two descriptors of one process never conflict, and
/// closing any descriptor of the file drops all the process's locks on it. So a process opens each lock file once
/// (<see cref="LayerLeases"/> and <see cref="StoreMutex"/> keep that one descriptor) and never elsewhere.</para>
/// <para>Not thread-safe; callers serialise.</para>
/// </remarks>
internal sealed partial class LockFile : IDisposable
{
    // fcntl(2) commands and lock types on Linux x86-64/arm64 (asm-generic/fcntl.h): 64-bit off_t natively.
    private const int FGetLk = 5;
    private const int FSetLk = 6;
    private const int FSetLkW = 7;
    private const short FRdLck = 0;
    private const short FWrLck = 1;
    private const short FUnLck = 2;
    private const int Eintr = 4;
    private const int Eagain = 11;
    private const int Eacces = 13;

    private readonly SafeFileHandle _handle;

    private LockFile(string path, SafeFileHandle handle)
    {
        Path = path;
        _handle = handle;
    }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>Opens (creating, mode 0600) the lock file; takes no lock. A symbolic link in its place is refused
    /// (O_NOFOLLOW), so a lock file can never be a way to open some other file.</summary>
    public static LockFile Open(string path)
    {
        const int ORdWr = 0x2, OCreat = 0x40, ONoFollow = 0x20000, OCloExec = 0x80000, Eloop = 40;
        int fd;
        do
        {
            fd = OpenFile(path, ORdWr | OCreat | ONoFollow | OCloExec, 0x180);
        }
        while (fd < 0 && Marshal.GetLastPInvokeError() == Eintr);

        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException(errno == Eloop
                ? $"{path}: the lock file is a symbolic link; refusing to follow it."
                : $"{path}: opening the lock file failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");
        }

        return new LockFile(path, new SafeFileHandle(fd, ownsHandle: true));
    }

    /// <summary>Takes (or converts to) a shared or exclusive lock without waiting. Returns false and the pid of a
    /// process holding a conflicting lock when another process holds one.</summary>
    public bool TryLock(bool exclusive, out int holder)
    {
        var request = new Flock { Type = exclusive ? FWrLck : FRdLck };
        while (Fcntl(_handle, FSetLk, ref request) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Eintr)
            {
                continue;
            }

            if (errno is Eagain or Eacces)
            {
                holder = Holder(exclusive);
                return false;
            }

            throw Failure("F_SETLK", errno);
        }

        holder = 0;
        return true;
    }

    /// <summary>Takes an exclusive lock, waiting for other processes to let go.</summary>
    public void LockExclusive()
    {
        var request = new Flock { Type = FWrLck };
        while (Fcntl(_handle, FSetLkW, ref request) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Eintr)
            {
                throw Failure("F_SETLKW", errno);
            }
        }
    }

    /// <summary>The pid of a process whose lock conflicts with the given kind of lock, or 0 when none does now.</summary>
    public int Holder(bool exclusive)
    {
        var probe = new Flock { Type = exclusive ? FWrLck : FRdLck };
        if (Fcntl(_handle, FGetLk, ref probe) != 0)
        {
            throw Failure("F_GETLK", Marshal.GetLastPInvokeError());
        }

        return probe.Type == FUnLck ? 0 : probe.Pid;
    }

    /// <summary>Drops this process's lock.</summary>
    public void Unlock()
    {
        var request = new Flock { Type = FUnLck };
        if (Fcntl(_handle, FSetLk, ref request) != 0)
        {
            throw Failure("F_SETLK(F_UNLCK)", Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>Closes the descriptor, which releases the lock.</summary>
    public void Dispose() => _handle.Dispose();

    private IOException Failure(string what, int errno) =>
        new($"{Path}: fcntl({what}) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno}).");

    // struct flock: short l_type; short l_whence; off_t l_start; off_t l_len; pid_t l_pid. l_whence = SEEK_SET,
    // l_start = 0 and l_len = 0 (to the end, however far) lock the whole file.
    [StructLayout(LayoutKind.Sequential)]
    private struct Flock
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Length;
        public int Pid;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenFile(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(SafeFileHandle fd, int command, ref Flock lockInfo);
}
