using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using BlockDriver.Abstractions;
using BlockDriver.Interop;

namespace BlockDriver.Mount;

/// <summary>
/// A kernel loop device (/dev/loopN) bound to a file, attached without losetup: LOOP_CTL_GET_FREE on
/// /dev/loop-control, then one LOOP_CONFIGURE (Linux 5.8+) with the backing fd, block size and flags.
/// </summary>
/// <remarks>
/// <para>The instance holds /dev/loopN open; with <see cref="LoopOptions.AutoClear"/> the kernel unbinds the device
/// when the last opener closes it, so even a crashed process leaks no binding once its fds are gone (a file system
/// mounted on the device is an opener too). <see cref="Detach"/> (or <see cref="Dispose"/>) unbinds it explicitly
/// (LOOP_CLR_FD) and waits until the kernel has let go of the backing file.</para>
/// <para>Thread safety: <see cref="Detach"/> is idempotent and may race with itself; nothing else changes state.</para>
/// </remarks>
public sealed class LoopDevice : IDisposable
{
    // errno values a sysfs attribute of a loop device being torn down answers with (.NET's IOException carries the
    // raw errno as its HResult on Unix).
    private const int Enxio = 6;
    private const int Enodev = 19;

    private const int MaxAttachAttempts = 32;
    private readonly TimeSpan _detachTimeout;
    private int _fd;

    private LoopDevice(int index, int fd, string backingFile, bool readOnly, bool directIo, int logicalBlockSize, TimeSpan detachTimeout)
    {
        Index = index;
        _fd = fd;
        BackingFile = backingFile;
        ReadOnly = readOnly;
        DirectIo = directIo;
        LogicalBlockSize = logicalBlockSize;
        _detachTimeout = detachTimeout;
    }

    /// <summary>N of /dev/loopN.</summary>
    public int Index { get; }

    /// <summary>The device node, /dev/loopN.</summary>
    public string Path => DevicePath(Index);

    /// <summary>The absolute path of the backing file.</summary>
    public string BackingFile { get; }

    /// <summary>True when attached read-only.</summary>
    public bool ReadOnly { get; }

    /// <summary>True when the kernel actually does direct I/O to the backing file (sysfs <c>loop/dio</c>).</summary>
    public bool DirectIo { get; }

    /// <summary>The device's logical block size in bytes.</summary>
    public int LogicalBlockSize { get; }

    /// <summary>True until <see cref="Detach"/> ran.</summary>
    public bool IsAttached => Volatile.Read(ref _fd) >= 0;

    /// <summary>Binds a free loop device to <paramref name="backingFile"/>. The device's size is the file's size now.
    /// A file inside a FUSE mount must already be served: opening it sends LOOKUP/OPEN to the server.</summary>
    /// <exception cref="BlockDriverException">NotFound (no such file), ReadOnly (a writable attach of a file that
    /// cannot be opened for writing), Unavailable (no loop support; direct I/O refused and no fallback allowed;
    /// no free device after repeated races), InvalidArgument (the kernel refused the configuration).</exception>
    /// <exception cref="ArgumentOutOfRangeException">The block size is not a power of two from 512 to 4096.</exception>
    public static LoopDevice Attach(string backingFile, LoopOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(backingFile);
        options ??= new LoopOptions();
        int blockSize = options.LogicalBlockSize;
        if (blockSize is < 512 or > 4096 || (blockSize & (blockSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), blockSize, "The logical block size must be a power of two from 512 to 4096.");
        }

        string full = System.IO.Path.GetFullPath(backingFile);
        int backing = Libc.Open(full, (options.ReadOnly ? LoopNative.ORdOnly : LoopNative.ORdWr) | LoopNative.OCloExec, 0);
        if (backing < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            ErrorKind kind = errno switch
            {
                Errno.ENOENT => ErrorKind.NotFound,
                Errno.EROFS or Errno.EACCES => ErrorKind.ReadOnly,
                _ => ErrorKind.Unavailable,
            };
            throw new BlockDriverException(kind, $"Opening the backing file {full} failed: {Errno.Describe(errno)}.");
        }

        try
        {
            return AttachFd(backing, full, options);
        }
        finally
        {
            // The loop driver holds its own reference to the open file from LOOP_CONFIGURE on.
            Libc.Close(backing);
        }
    }

    /// <summary>The loop devices whose backing file is <paramref name="backingFile"/> (sysfs
    /// <c>/sys/block/loopN/loop/backing_file</c>), for leak checks and cleanup after a crash.</summary>
    public static IReadOnlyList<string> FindByBackingFile(string backingFile)
    {
        ArgumentException.ThrowIfNullOrEmpty(backingFile);
        string full = System.IO.Path.GetFullPath(backingFile);
        var devices = new List<string>();
        foreach ((int index, string file) in ListBound())
        {
            // A backing file deleted since shows as "path (deleted)".
            if (file == full || file == full + " (deleted)")
            {
                devices.Add(DevicePath(index));
            }
        }

        return devices;
    }

    /// <summary>Every bound loop device and its backing file.</summary>
    public static IReadOnlyList<(int Index, string BackingFile)> ListBound()
    {
        var bound = new List<(int, string)>();
        foreach (string directory in Directory.GetDirectories("/sys/block", "loop*"))
        {
            if (!int.TryParse(System.IO.Path.GetFileName(directory).AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out int index))
            {
                continue;
            }

            string? file = ReadSysfs(System.IO.Path.Combine(directory, "loop", "backing_file"));
            if (file is not null)
            {
                bound.Add((index, file));
            }
        }

        return bound;
    }

    /// <summary>Unbinds the loop device at <paramref name="devicePath"/> (e.g. one a crashed process left, found by
    /// <see cref="FindByBackingFile"/>) and waits up to <paramref name="timeout"/> for it to let go.</summary>
    /// <exception cref="BlockDriverException">NotFound (no such device), InUse (still bound after the timeout:
    /// something, such as a mounted file system, holds it open; it unbinds when that closes).</exception>
    public static void DetachDevice(string devicePath, TimeSpan timeout)
    {
        ArgumentException.ThrowIfNullOrEmpty(devicePath);
        string name = System.IO.Path.GetFileName(devicePath);
        if (!name.StartsWith("loop", StringComparison.Ordinal) ||
            !int.TryParse(name.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out int index))
        {
            throw new ArgumentException($"{devicePath} is not a /dev/loopN path.", nameof(devicePath));
        }

        int fd = Libc.Open(DevicePath(index), LoopNative.ORdOnly | LoopNative.OCloExec, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new BlockDriverException(ErrorKind.NotFound, $"Opening {devicePath} failed: {Errno.Describe(errno)}.");
        }

        Unbind(fd, index, timeout);
    }

    /// <summary>Unbinds the device (LOOP_CLR_FD), closes it and waits until the kernel has released the backing file,
    /// so that the file's server may go away. Idempotent.</summary>
    /// <exception cref="BlockDriverException">InUse when the device is still bound after the timeout because another
    /// opener (a mounted file system) holds it; the kernel unbinds it when that opener closes.</exception>
    public void Detach()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            Unbind(fd, Index, _detachTimeout);
        }
    }

    /// <summary>Same as <see cref="Detach"/>.</summary>
    public void Dispose() => Detach();

    /// <inheritdoc/>
    public override string ToString() => $"{Path} -> {BackingFile}";

    private static unsafe LoopDevice AttachFd(int backing, string path, LoopOptions options)
    {
        int control = Libc.Open("/dev/loop-control", LoopNative.ORdWr | LoopNative.OCloExec, 0);
        if (control < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new BlockDriverException(ErrorKind.Unavailable, $"Opening /dev/loop-control failed: {Errno.Describe(errno)}.");
        }

        try
        {
            bool directIo = options.DirectIo;
            for (int attempt = 0; attempt < MaxAttachAttempts; attempt++)
            {
                int index = Libc.Ioctl(control, LoopNative.LoopCtlGetFree, 0);
                if (index < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    throw new BlockDriverException(ErrorKind.Unavailable, $"LOOP_CTL_GET_FREE failed: {Errno.Describe(errno)}.");
                }

                int fd = Libc.Open(DevicePath(index), LoopNative.ORdWr | LoopNative.OCloExec, 0);
                if (fd < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    throw new BlockDriverException(ErrorKind.Unavailable, $"Opening {DevicePath(index)} failed: {Errno.Describe(errno)}.");
                }

                int result = Configure(fd, backing, path, options, directIo);
                int error = result == 0 ? 0 : Marshal.GetLastPInvokeError();
                if (result != 0 && error == Errno.EINVAL && directIo && options.AllowBufferedFallback)
                {
                    // Kernels that refuse direct I/O at configure time (rather than silently not using it).
                    directIo = false;
                    result = Configure(fd, backing, path, options, directIo);
                    error = result == 0 ? 0 : Marshal.GetLastPInvokeError();
                }

                if (result == 0)
                {
                    return Attached(fd, index, path, options);
                }

                Libc.Close(fd);
                if (error == Errno.EBUSY)
                {
                    // Another process bound this device between GET_FREE and CONFIGURE: ask for another one.
                    continue;
                }

                string reason = error == Errno.EINVAL && directIo
                    ? "; the kernel may refuse direct I/O for this file (set AllowBufferedFallback to attach buffered)"
                    : "";
                throw new BlockDriverException(error == Errno.EINVAL ? ErrorKind.InvalidArgument : ErrorKind.Unavailable,
                    $"LOOP_CONFIGURE of {DevicePath(index)} on {path} failed: {Errno.Describe(error)}{reason}.");
            }

            throw new BlockDriverException(ErrorKind.Unavailable, $"No free loop device for {path} after {MaxAttachAttempts} attempts (others kept taking them).");
        }
        finally
        {
            Libc.Close(control);
        }
    }

    private static unsafe int Configure(int fd, int backing, string path, LoopOptions options, bool directIo)
    {
        byte* config = stackalloc byte[LoopNative.LoopConfigSize];
        var span = new Span<byte>(config, LoopNative.LoopConfigSize);
        span.Clear();
        uint flags = (options.ReadOnly ? LoopNative.LoFlagsReadOnly : 0) |
                     (options.AutoClear ? LoopNative.LoFlagsAutoClear : 0) |
                     (directIo ? LoopNative.LoFlagsDirectIo : 0);
        BitConverter.TryWriteBytes(span, backing);
        BitConverter.TryWriteBytes(span[4..], (uint)options.LogicalBlockSize);
        BitConverter.TryWriteBytes(span[(LoopNative.ConfigInfoOffset + LoopNative.InfoFlagsOffset)..], flags);

        // lo_file_name: informational, NUL-terminated, at most 63 bytes; the tail of a long path is the useful part.
        byte[] name = Encoding.UTF8.GetBytes(path);
        int keep = Math.Min(name.Length, LoopNative.FileNameSize - 1);
        name.AsSpan(name.Length - keep).CopyTo(span[(LoopNative.ConfigInfoOffset + LoopNative.InfoFileNameOffset)..]);
        return Libc.Ioctl(fd, LoopNative.LoopConfigure, config);
    }

    private static LoopDevice Attached(int fd, int index, string path, LoopOptions options)
    {
        string sysfs = $"/sys/block/loop{index}/loop/dio";
        bool directIo = ReadSysfs(sysfs) == "1";
        var device = new LoopDevice(index, fd, path, options.ReadOnly, directIo, options.LogicalBlockSize, options.DetachTimeout);
        if (options.DirectIo && !directIo && !options.AllowBufferedFallback)
        {
            // The kernel configured the device but fell back to buffered I/O (loop's lo_can_use_dio refused it).
            device.Detach();
            throw new BlockDriverException(ErrorKind.Unavailable,
                $"The kernel refused direct I/O on {path} ({sysfs} is not 1); set AllowBufferedFallback to attach buffered.");
        }

        return device;
    }

    private static void Unbind(int fd, int index, TimeSpan timeout)
    {
        try
        {
            if (Libc.Ioctl(fd, LoopNative.LoopClrFd, 0) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                // ENXIO: not bound (autoclear already ran). EBUSY: older kernels with other openers; the device still
                // has AUTOCLEAR when we attached it, so it unbinds when they close: wait below as well.
                if (errno is not (Errno.ENXIO or Errno.EBUSY))
                {
                    throw new BlockDriverException(ErrorKind.Unavailable, $"LOOP_CLR_FD on {DevicePath(index)} failed: {Errno.Describe(errno)}.");
                }
            }
        }
        finally
        {
            // Current kernels only mark the device for clearing here; the unbinding happens on the last close.
            Libc.Close(fd);
        }

        string backingFile = $"/sys/block/loop{index}/loop/backing_file";
        DateTime deadline = DateTime.UtcNow + timeout;
        while (ReadSysfs(backingFile) is { } file)
        {
            if (DateTime.UtcNow >= deadline)
            {
                throw new BlockDriverException(ErrorKind.InUse,
                    $"{DevicePath(index)} still holds {file} after {timeout.TotalSeconds:0.#} s: something keeps it open " +
                    "(a mounted file system?); it unbinds when that closes.");
            }

            Thread.Sleep(10);
        }
    }

    private static string DevicePath(int index) => string.Create(CultureInfo.InvariantCulture, $"/dev/loop{index}");

    // A sysfs attribute's content without the trailing newline, or null when it does not exist (device unbound).
    private static string? ReadSysfs(string path)
    {
        try
        {
            return File.ReadAllText(path).TrimEnd('\n');
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (IOException ex) when (ex.HResult is Enodev or Enxio)
        {
            // A device another process is detaching right now: its loop attributes answer ENODEV/ENXIO until its
            // sysfs directory goes (seen when test processes attach and detach devices side by side). Not bound.
            return null;
        }
    }
}
