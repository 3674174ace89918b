using System.Net.Sockets;
using BlockDriver.Abstractions;

namespace BlockDriver.Nbd;

/// <summary>The one translation of failures into NBD error values (cf. nbdkit <c>server/protocol.c</c>
/// <c>nbd_errno</c>). Exceptions never cross the wire: the transmission phase catches what a device throws for one
/// request, sends the value from <see cref="ToErrno"/> with the message, and the connection goes on.</summary>
internal static class NbdError
{
    /// <summary>The error value for <paramref name="exception"/>; <see cref="NbdErrno.Io"/> for anything unexpected.</summary>
    public static NbdErrno ToErrno(Exception exception) => exception switch
    {
        NbdRequestException e => e.Errno,
        BlockDriverException e => e.Kind switch
        {
            ErrorKind.ReadOnly => NbdErrno.Perm,
            ErrorKind.NoSpace => NbdErrno.NoSpace,
            ErrorKind.InvalidArgument => NbdErrno.Invalid,
            ErrorKind.NotFound => NbdErrno.Invalid,

            // Corrupt, InUse, AlreadyExists, Unavailable: the device cannot serve the request; the client sees an I/O error.
            _ => NbdErrno.Io,
        },

        // BlockDeviceGuard's range and alignment checks; the transmission phase checks first, so this is a device
        // with stricter limits than it advertised.
        ArgumentException => NbdErrno.Invalid,
        ObjectDisposedException or OperationCanceledException => NbdErrno.Shutdown,
        OutOfMemoryException or InsufficientExecutionStackException => NbdErrno.NoMem,
        IOException { HResult: var h } when IsNoSpace(h) => NbdErrno.NoSpace,
        IOException or SocketException => NbdErrno.Io,
        _ => NbdErrno.Io,
    };

    /// <summary>True when <paramref name="exception"/> is a device failure the server expected to happen sometimes
    /// (logged at Debug), false for a bug or a surprise (logged as a warning).</summary>
    public static bool IsExpected(Exception exception) =>
        exception is NbdRequestException or BlockDriverException or ArgumentException or IOException or OperationCanceledException or ObjectDisposedException;

    // ENOSPC (28) and EDQUOT (122) surface as IOException with the errno in HResult's low bits on Unix.
    private static bool IsNoSpace(int hresult) => (hresult & 0xFFFF) is 28 or 122;
}
