using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using BlockDriver.Abstractions;
using BlockDriver.Interop;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BlockDriver.Fuse;

/// <summary>
/// A FUSE file system, served over /dev/fuse without libfuse, whose root is a flat directory of fixed-size files,
/// each one an <see cref="IBlockDevice"/>: READ/WRITE map to the device's reads and writes, FSYNC and FLUSH to its
/// flush, FALLOCATE (punch hole, zero range) to write-zeroes. A loop device on such a file turns the device into a
/// kernel block device.
/// </summary>
/// <remarks>
/// <para>Threads: <see cref="FuseServerOptions.WorkerThreads"/> dedicated threads block in read(2), each on its own
/// clone of the /dev/fuse fd; a request runs on the thread that read it until its first asynchronous device call,
/// and its reply goes to the fd it came from. Devices must accept concurrent requests (the
/// <see cref="IBlockDevice"/> contract).</para>
/// <para>Ownership: the server does not own the devices. Dispose the server (or remove the file) before disposing
/// a device. <see cref="DisposeAsync"/> unmounts, waits for the readers and requests in flight, and closes the fds.</para>
/// <para>Never touch the mount from a thread that the server needs to answer (a device implementation must not
/// do I/O on the FUSE mount or on a loop device over it): that request would wait for itself.</para>
/// </remarks>
public sealed partial class FuseDeviceServer : IAsyncDisposable
{
    private const uint NotifyInvalEntry = 3;

    private readonly string _mountPoint;
    private readonly FuseServerOptions _options;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, FuseNode> _byName = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<ulong, FuseNode> _byId = new();
    private readonly ConcurrentDictionary<ulong, FuseNode> _handles = new();
    private readonly List<int> _fds = [];
    private readonly List<Task> _readers = [];
    private readonly TaskCompletionSource _initialized = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _unalignedGate = new(1, 1);
    private readonly int _bufferSize;
    private readonly long _createdSeconds = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private ulong _nextNodeId = FuseProtocol.RootId;
    private long _nextHandle;

    // One reference for the running server plus one per request in flight; teardown drops the first and waits for 0.
    private long _inFlight = 1;
    private int _disposed;
    private bool _mounted;
    private int _connectionId = -1;
    private PosixSignalRegistration? _sigterm;
    private uint _minor;
    private uint _maxWrite;

    private FuseDeviceServer(string mountPoint, FuseServerOptions options)
    {
        _mountPoint = mountPoint;
        _options = options;
        _logger = options.Logger ?? NullLogger.Instance;

        // A read() must have room for the largest request: the in-header, fuse_write_in and max_write bytes of data
        // (fs/fuse/dev.c refuses smaller buffers with EINVAL); libfuse adds a page for the same reason.
        _bufferSize = Math.Max(FuseProtocol.MinReadBuffer, options.MaxWrite + 4096);
    }

    /// <summary>The mount point: an absolute path without trailing slash.</summary>
    public string MountPoint => _mountPoint;

    /// <summary>The FUSE connection number (/sys/fs/fuse/connections/N), or -1 if unknown.</summary>
    public int ConnectionId => _connectionId;

    /// <summary>The negotiated largest READ/WRITE payload in bytes.</summary>
    public int MaxWrite => (int)_maxWrite;

    /// <summary>Names of the files currently in the root directory.</summary>
    public IReadOnlyList<string> FileNames
    {
        get
        {
            lock (_lock)
            {
                return [.. _byName.Keys.Order(StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>Mounts a new server at <paramref name="mountPoint"/> (an existing directory) and returns once the
    /// kernel has completed INIT, so the mount is usable. A stale FUSE mount left there by a dead server is cleaned
    /// first (<see cref="FuseMounts.CleanupStaleAsync"/>).</summary>
    /// <exception cref="BlockDriverException">NotFound (no such directory), InUse (a live FUSE mount is there),
    /// Unavailable (no /dev/fuse, mount(2) refused, or the kernel did not send INIT in time).</exception>
    public static async Task<FuseDeviceServer> MountAsync(string mountPoint, FuseServerOptions? options = null, CancellationToken ct = default)
    {
        options ??= new FuseServerOptions();
        options.Validate();
        string full = FuseMounts.Normalize(mountPoint);
        await FuseMounts.CleanupStaleAsync(full, options.Logger, ct).ConfigureAwait(false);
        if (!Directory.Exists(full))
        {
            throw new BlockDriverException(ErrorKind.NotFound, $"{full}: the mount point is not an existing directory.");
        }

        var server = new FuseDeviceServer(full, options);
        try
        {
            server.Mount();
            await server._initialized.Task.WaitAsync(options.InitTimeout, ct).ConfigureAwait(false);
            server.StartClonedReaders();
            if (options.UnmountOnProcessExit)
            {
                AppDomain.CurrentDomain.ProcessExit += server.OnProcessExit;
            }

            if (options.UnmountOnSigterm)
            {
                server._sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ => server.OnProcessExit(null, EventArgs.Empty));
            }

            Log.Mounted(server._logger, full, server._connectionId, server._minor, server._maxWrite, server._fds.Count);
            return server;
        }
        catch (TimeoutException ex)
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw new BlockDriverException(ErrorKind.Unavailable, $"{full}: the kernel sent no FUSE INIT within {options.InitTimeout}.", ex);
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The absolute path of file <paramref name="name"/> in the mount (whether or not it exists).</summary>
    public string GetFilePath(string name) => Path.Combine(_mountPoint, name);

    /// <summary>Adds a file named <paramref name="name"/> whose content is <paramref name="device"/>, sized to
    /// <see cref="IBlockDevice.Length"/>, writable unless the device is read-only. The caller keeps owning the device
    /// and must not dispose it before the file is removed or the server disposed.</summary>
    /// <exception cref="ArgumentException">The name is empty, ".", "..", longer than 255 bytes, or holds '/' or NUL.</exception>
    /// <exception cref="BlockDriverException">AlreadyExists.</exception>
    public void AddFile(string name, IBlockDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        CheckName(name);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        lock (_lock)
        {
            if (_byName.ContainsKey(name))
            {
                throw new BlockDriverException(ErrorKind.AlreadyExists, $"{GetFilePath(name)} exists already.");
            }

            var node = new FuseNode(++_nextNodeId, name, device);
            _byName.Add(name, node);
            _byId[node.NodeId] = node;
        }

        Log.FileAdded(_logger, name, device.Length);
    }

    /// <summary>Removes file <paramref name="name"/>. While the file is open (a loop device or a process holds it)
    /// the removal waits up to <paramref name="waitForClose"/> (default none; the kernel releases a closed file
    /// asynchronously, so allow a moment after a close) and then refuses. New lookups fail at once afterwards; the
    /// device is not disposed.</summary>
    /// <exception cref="BlockDriverException">NotFound, or InUse when the file stayed open.</exception>
    public async Task RemoveFileAsync(string name, TimeSpan waitForClose = default, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        DateTime deadline = DateTime.UtcNow + waitForClose;
        while (true)
        {
            int openCount;
            lock (_lock)
            {
                if (!_byName.TryGetValue(name, out FuseNode? node))
                {
                    throw new BlockDriverException(ErrorKind.NotFound, $"{GetFilePath(name)} does not exist.");
                }

                openCount = node.OpenCount;
                if (openCount == 0)
                {
                    _byName.Remove(name);
                    _byId.TryRemove(node.NodeId, out _);
                    break;
                }
            }

            if (DateTime.UtcNow >= deadline)
            {
                throw new BlockDriverException(ErrorKind.InUse, $"{GetFilePath(name)} is open {openCount} time(s); not removing it.");
            }

            await Task.Delay(10, ct).ConfigureAwait(false);
        }

        InvalidateEntry(name);
        Log.FileRemoved(_logger, name);
    }

    /// <summary>Unmounts (lazily if a file is still held open, aborting the connection if it does not end), waits for
    /// the reader threads and the requests in flight, and closes the /dev/fuse fds. Does not dispose the devices.
    /// Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        _sigterm?.Dispose();
        bool readersEnded = true;
        if (_mounted)
        {
            Unmount();
            readersEnded = await WaitForReadersAsync().ConfigureAwait(false);
            if (!readersEnded && AbortConnection())
            {
                Log.Aborted(_logger, _connectionId, _mountPoint);
                readersEnded = await WaitForReadersAsync().ConfigureAwait(false);
            }
        }

        if (Interlocked.Decrement(ref _inFlight) > 0)
        {
            try
            {
                await _drained.Task.WaitAsync(_options.TeardownTimeout).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Log.TeardownProblem(_logger, _mountPoint, "requests were still in flight after the timeout");
            }
        }

        if (readersEnded)
        {
            foreach (int fd in _fds)
            {
                Libc.Close(fd);
            }

            _fds.Clear();
        }
        else
        {
            // Closing an fd a thread still blocks in would let the number be reused under it; leave them.
            Log.TeardownProblem(_logger, _mountPoint, "reader threads did not stop; their /dev/fuse fds stay open");
        }

        if (_mounted)
        {
            Log.Unmounted(_logger, _mountPoint);
        }

        _unalignedGate.Dispose();
    }

    private static void CheckName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0 || name == "." || name == ".." || name.Contains('/', StringComparison.Ordinal) ||
            name.Contains('\0', StringComparison.Ordinal) || Encoding.UTF8.GetByteCount(name) > 255)
        {
            throw new ArgumentException($"\"{name}\" is not a valid file name (1-255 bytes, no '/' or NUL, not . or ..).", nameof(name));
        }
    }

    private static int LastErrno() => Marshal.GetLastPInvokeError();

    private void Mount()
    {
        int fd = Libc.Open("/dev/fuse", FuseNative.ORdWr | FuseNative.OCloExec, 0);
        if (fd < 0)
        {
            int errno = LastErrno();
            throw new BlockDriverException(ErrorKind.Unavailable, $"Opening /dev/fuse failed: {Errno.Describe(errno)}.");
        }

        _fds.Add(fd);
        string data = string.Create(CultureInfo.InvariantCulture,
            $"fd={fd},rootmode=40000,user_id={Libc.GetEffectiveUserId()},group_id={Libc.GetEffectiveGroupId()}," +
            $"default_permissions,max_read={_options.MaxWrite}");
        if (Libc.Mount(_options.Subtype, _mountPoint, "fuse." + _options.Subtype, FuseNative.MsNoSuid | FuseNative.MsNoDev, data) != 0)
        {
            int errno = LastErrno();
            throw new BlockDriverException(ErrorKind.Unavailable, $"mount(2) of FUSE at {_mountPoint} failed: {Errno.Describe(errno)}.");
        }

        _mounted = true;
        _connectionId = FuseMounts.FindAt(_mountPoint).LastOrDefault(e => e.FileSystemType == "fuse." + _options.Subtype)?.ConnectionId ?? -1;

        // mount(2) returns before INIT is answered, and the INIT request waits on this fd: serve it from a reader
        // now. Nothing may touch the mount until INIT completes.
        StartReader(fd);
    }

    private void StartClonedReaders()
    {
        int master = _fds[0];
        for (int i = 1; i < _options.WorkerThreads; i++)
        {
            int clone = Libc.Open("/dev/fuse", FuseNative.ORdWr | FuseNative.OCloExec, 0);
            if (clone < 0)
            {
                int errno = LastErrno();
                throw new BlockDriverException(ErrorKind.Unavailable, $"Opening /dev/fuse for a clone failed: {Errno.Describe(errno)}.");
            }

            uint masterFd = (uint)master;
            if (Libc.Ioctl(clone, FuseNative.FuseDevIocClone, ref masterFd) != 0)
            {
                int errno = LastErrno();
                Libc.Close(clone);
                throw new BlockDriverException(ErrorKind.Unavailable, $"FUSE_DEV_IOC_CLONE failed: {Errno.Describe(errno)}.");
            }

            _fds.Add(clone);
            StartReader(clone);
        }
    }

    private void StartReader(int fd)
    {
        var exited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() => ReaderLoop(fd, exited))
        {
            IsBackground = true,
            Name = $"fuse-reader-{_readers.Count}",
        };
        _readers.Add(exited.Task);
        thread.Start();
    }

    private void Unmount()
    {
        if (Libc.Umount2(_mountPoint, 0) == 0)
        {
            return;
        }

        int errno = LastErrno();
        if (errno == Errno.EINVAL)
        {
            // EINVAL: not a mount point any more (someone unmounted it already).
            return;
        }

        Log.UnmountBusy(_logger, _mountPoint, Errno.Describe(errno));
        if (Libc.Umount2(_mountPoint, FuseNative.MntDetach) != 0)
        {
            Log.TeardownProblem(_logger, _mountPoint, $"lazy unmount failed: {Errno.Describe(LastErrno())}");
        }
    }

    private async Task<bool> WaitForReadersAsync()
    {
        try
        {
            await Task.WhenAll(_readers).WaitAsync(_options.TeardownTimeout).ConfigureAwait(false);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    // Writes to /sys/fs/fuse/connections/N/abort (Documentation/filesystems/fuse.rst): every request fails, blocked
    // readers return ENODEV. The control file system is mounted for the moment if nobody has mounted it.
    private bool AbortConnection()
    {
        if (_connectionId < 0)
        {
            return false;
        }

        const string controlRoot = "/sys/fs/fuse/connections";
        string abort = $"{controlRoot}/{_connectionId}/abort";
        bool mountedControl = false;
        if (!File.Exists(abort) && !MountInfoEntry.ReadAll().Any(e => e.FileSystemType == "fusectl"))
        {
            mountedControl = Libc.Mount("fusectl", controlRoot, "fusectl", 0, null) == 0;
        }

        try
        {
            File.WriteAllText(abort, "1");
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.TeardownProblem(_logger, _mountPoint, $"aborting connection {_connectionId} failed: {ex.Message}");
            return false;
        }
        finally
        {
            if (mountedControl)
            {
                Libc.Umount2(controlRoot, 0);
            }
        }
    }

    // ProcessExit (and SIGTERM when asked). Nothing async can be awaited here: unmount (lazily if busy) and abort
    // the connection if a file is still held, so no mount outlives the process.
    private void OnProcessExit(object? sender, EventArgs e)
    {
        if (Volatile.Read(ref _disposed) != 0 || !_mounted)
        {
            return;
        }

        if (Libc.Umount2(_mountPoint, 0) != 0 && LastErrno() == Errno.EBUSY)
        {
            Libc.Umount2(_mountPoint, FuseNative.MntDetach);
            AbortConnection();
        }
    }

    // FUSE_NOTIFY_INVAL_ENTRY: drop a cached dentry of a removed file (fuse_notify_inval_entry_out: parent u64,
    // namelen u32, flags u32, then the name and a NUL). ENOENT means nothing was cached.
    private unsafe void InvalidateEntry(string name)
    {
        if (!_mounted || _fds.Count == 0 || Volatile.Read(ref _disposed) != 0)
        {
            return;
        }

        int nameLength = Encoding.UTF8.GetByteCount(name);
        int length = FuseProtocol.OutHeaderSize + 16 + nameLength + 1;
        byte[] message = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            Span<byte> span = message.AsSpan(0, length);
            span.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)length);
            BinaryPrimitives.WriteInt32LittleEndian(span[4..], (int)NotifyInvalEntry);
            BinaryPrimitives.WriteUInt64LittleEndian(span[16..], FuseProtocol.RootId);
            BinaryPrimitives.WriteUInt32LittleEndian(span[24..], (uint)nameLength);
            Encoding.UTF8.GetBytes(name, span[32..]);
            fixed (byte* p = span)
            {
                int errno = Libc.Write(_fds[0], p, length) < 0 ? LastErrno() : 0;
                if (errno is not (0 or Errno.ENOENT or Errno.ENODEV))
                {
                    Log.ReplyFailed(_logger, $"FUSE_NOTIFY_INVAL_ENTRY for {name}: {Errno.Describe(errno)}");
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(message);
        }
    }
}
