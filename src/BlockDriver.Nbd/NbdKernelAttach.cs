using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using BlockDriver.Abstractions;
using BlockDriver.Interop;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Nbd;

/// <summary>An export of an <see cref="NbdServer"/> attached to a kernel NBD device (/dev/nbdN) through the ioctl
/// interface (Linux <c>include/uapi/linux/nbd.h</c>): the server keeps one end of a socket pair and serves the
/// transmission phase on it with simple replies; the kernel gets the other end. Disposing detaches.</summary>
/// <remarks>Needs root (CAP_SYS_ADMIN) and the nbd module. The device thread blocks in NBD_DO_IT for the whole
/// attachment, so it is a dedicated thread, not a pool thread.</remarks>
public sealed class NbdKernelAttach : IAsyncDisposable
{
    // _IO(0xab, n) from <linux/nbd.h>.
    private const nuint NbdSetSock = 0xab00;
    private const nuint NbdSetBlockSize = 0xab01;
    private const nuint NbdSetSize = 0xab02;
    private const nuint NbdDoIt = 0xab03;
    private const nuint NbdClearSock = 0xab04;
    private const nuint NbdDisconnect = 0xab08;
    private const nuint NbdSetTimeout = 0xab09;
    private const nuint NbdSetFlags = 0xab0a;

    // Seconds before the kernel gives up on a request; generous, a VHDX flush of many blocks can take a while.
    private const int RequestTimeoutSeconds = 120;

    private readonly SafeFileHandle _device;
    private readonly Task _serving;
    private readonly TaskCompletionSource<int> _doIt = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    private NbdKernelAttach(string devicePath, SafeFileHandle device, Task serving)
    {
        DevicePath = devicePath;
        _device = device;
        _serving = serving;
    }

    /// <summary>The attached device, e.g. /dev/nbd0.</summary>
    public string DevicePath { get; }

    /// <summary>Completes when the kernel lets go of the device (detach, or the connection broke); the value is
    /// NBD_DO_IT's result (0 after a requested disconnect).</summary>
    public Task<int> Completion => _doIt.Task;

    /// <summary>Attaches <paramref name="exportName"/> of <paramref name="server"/> to
    /// <paramref name="devicePath"/>, or to the first free /dev/nbdN when null.</summary>
    /// <exception cref="BlockDriverException">Unavailable: no nbd devices (module not loaded) or none free;
    /// NotFound: no such export; InUse: the device is attached already.</exception>
    public static async Task<NbdKernelAttach> AttachAsync(NbdServer server, string exportName, string? devicePath = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(exportName);
        devicePath ??= FindFreeDevice();
        if (!File.Exists(devicePath))
        {
            throw new BlockDriverException(ErrorKind.Unavailable, $"no {devicePath}: the nbd kernel module is not loaded (modprobe nbd).");
        }

        if (IsConnected(devicePath))
        {
            throw new BlockDriverException(ErrorKind.InUse, $"{devicePath} is already attached.");
        }

        ExportHandle export = server.FindExport(exportName)
            ?? throw new BlockDriverException(ErrorKind.NotFound, $"The server has no export named '{exportName}'.");
        IBlockDevice device = await export.GetDeviceAsync(ct).ConfigureAwait(false);
        NbdTransmissionFlags flags = export.FlagsFor(device, structuredReplies: false);

        // The kernel block size is at most a page: 4096 when the device allows it (ext4's block), else its sector.
        int blockSize = device.Length % 4096 == 0 && device.SectorSize <= 4096 ? 4096 : device.SectorSize;
        int kernelEnd;
        int serverEnd;
        unsafe
        {
            int* fds = stackalloc int[2];
            if (Libc.SocketPair(Libc.AfUnix, Libc.SockStream, 0, fds) != 0)
            {
                throw new IOException($"socketpair failed: errno {Marshal.GetLastPInvokeError()}.");
            }

            kernelEnd = fds[0];
            serverEnd = fds[1];
        }

        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(devicePath, FileMode.Open, FileAccess.ReadWrite);
        }
        catch
        {
            Libc.Close(kernelEnd);
            Libc.Close(serverEnd);
            throw;
        }

        var socket = new Socket(new SafeSocketHandle(serverEnd, ownsHandle: true));
        try
        {
            Ioctl(handle, devicePath, NbdClearSock, 0, "NBD_CLEAR_SOCK");
            Ioctl(handle, devicePath, NbdSetBlockSize, (nuint)blockSize, "NBD_SET_BLKSIZE");
            Ioctl(handle, devicePath, NbdSetSize, (nuint)device.Length, "NBD_SET_SIZE");
            Ioctl(handle, devicePath, NbdSetTimeout, RequestTimeoutSeconds, "NBD_SET_TIMEOUT");
            Ioctl(handle, devicePath, NbdSetFlags, (nuint)(ushort)flags, "NBD_SET_FLAGS");
            Ioctl(handle, devicePath, NbdSetSock, (nuint)kernelEnd, "NBD_SET_SOCK");
        }
        catch
        {
            handle.Dispose();
            socket.Dispose();
            throw;
        }
        finally
        {
            // The kernel holds its own reference to the socket after NBD_SET_SOCK.
            Libc.Close(kernelEnd);
        }

        Task serving = server.ServeTransmissionAsync(socket, export, device, devicePath);
        var attach = new NbdKernelAttach(devicePath, handle, serving);
        var thread = new Thread(attach.RunDevice) { IsBackground = true, Name = "nbd " + devicePath };
        thread.Start();
        Log.KernelAttached(server.Logger, export.Name, devicePath);
        return attach;
    }

    /// <summary>Disconnects the device (the kernel sends NBD_CMD_DISC), waits for the kernel and the server side to
    /// finish, and releases the device. Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (!_doIt.Task.IsCompleted)
        {
            Ioctl(_device, DevicePath, NbdDisconnect, 0, "NBD_DISCONNECT");
        }

        await _doIt.Task.ConfigureAwait(false);
        Ioctl(_device, DevicePath, NbdClearSock, 0, "NBD_CLEAR_SOCK");
        _device.Dispose();
        await _serving.ConfigureAwait(false);
    }

    private void RunDevice()
    {
        bool added = false;
        try
        {
            _device.DangerousAddRef(ref added);
            int result = Libc.Ioctl(_device, NbdDoIt, 0);
            _doIt.TrySetResult(result == 0 ? 0 : Marshal.GetLastPInvokeError());
        }
        catch (Exception e)
        {
            // The dedicated thread's edge: hand the failure to whoever awaits Completion.
            _doIt.TrySetException(e);
        }
        finally
        {
            if (added)
            {
                _device.DangerousRelease();
            }
        }
    }

    private static void Ioctl(SafeFileHandle handle, string devicePath, nuint request, nuint argument, string name)
    {
        if (Libc.Ioctl(handle, request, argument) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new BlockDriverException(errno == Errno.EBUSY ? ErrorKind.InUse : ErrorKind.Unavailable,
                $"{name} on {devicePath} failed: errno {errno}.");
        }
    }

    // The first /dev/nbdN the kernel has not connected; /dev/nbd0 (so the error names it) when there are none.
    private static string FindFreeDevice()
    {
        for (int i = 0; i < 1024; i++)
        {
            string path = "/dev/nbd" + i.ToString(CultureInfo.InvariantCulture);
            if (!File.Exists(path))
            {
                break;
            }

            if (!IsConnected(path))
            {
                return path;
            }
        }

        if (File.Exists("/dev/nbd0"))
        {
            throw new BlockDriverException(ErrorKind.Unavailable, "Every /dev/nbdN device is in use.");
        }

        return "/dev/nbd0";
    }

    // /sys/block/nbdN/pid exists while a process holds the device connected.
    private static bool IsConnected(string devicePath) =>
        File.Exists(Path.Combine("/sys/block", Path.GetFileName(devicePath), "pid"));
}
