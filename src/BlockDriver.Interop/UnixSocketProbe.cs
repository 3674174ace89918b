using System.Net.Sockets;

namespace BlockDriver.Interop;

/// <summary>Whether a server answers on a unix socket: the one test the CLI (is a daemon running?), the daemon's
/// socket front end and the NBD server (is this socket file a dead process's, to be replaced?) make.</summary>
internal static unsafe class UnixSocketProbe
{
    // S_IFMT / S_IFSOCK from <sys/stat.h>; STATX_TYPE; struct statx is the same on every architecture (unlike struct
    // stat): 256 bytes, u16 stx_mode at 28.
    private const ushort TypeMask = 0xF000;
    private const ushort TypeSocket = 0xC000;
    private const uint StatxType = 0x1;
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;

    /// <summary>True when a process accepts connections on <paramref name="path"/>; false when the file is missing
    /// or nobody listens on it any more (ECONNREFUSED: a socket file left by a process that died).</summary>
    /// <exception cref="SocketException">Any other failure (EACCES, …): whether something listens is unknown.</exception>
    public static bool IsListening(string path)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable)
        {
            return false;
        }
    }

    /// <summary>True when <paramref name="path"/> itself (not a symlink target) is a unix socket.</summary>
    public static bool IsSocket(string path)
    {
        byte* buffer = stackalloc byte[256];
        if (Libc.Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, buffer) != 0)
        {
            return false;
        }

        ushort mode = *(ushort*)(buffer + 28);
        return (mode & TypeMask) == TypeSocket;
    }
}
