using System.Net.Sockets;

namespace BlockDriver.Nbd;

/// <summary>One connection the server tracks from accept to close, so that the watchdog and a stop past its deadline
/// can close it. Thread-safe.</summary>
internal sealed class NbdConnection
{
    private NbdTransmission? _transmission;
    private int _aborted;

    public NbdConnection(Socket socket, string peer)
    {
        Socket = socket;
        Peer = peer;
    }

    public Socket Socket { get; }

    public string Peer { get; }

    /// <summary>The connection's task (set once, before anyone can see the connection).</summary>
    public Task Task { get; set; } = Task.CompletedTask;

    /// <summary>True once <see cref="Abort"/> was called.</summary>
    public bool IsAborted => Volatile.Read(ref _aborted) != 0;

    /// <summary>The transmission phase, once the handshake is done; null again when it ended.</summary>
    public NbdTransmission? Transmission
    {
        get => Volatile.Read(ref _transmission);
        set => Volatile.Write(ref _transmission, value);
    }

    /// <summary>Closes the connection at once: the transmission stops (replies not sent are dropped) and the socket
    /// is closed, which fails the send or receive in progress. Idempotent; returns false if already aborted.</summary>
    public bool Abort()
    {
        if (Interlocked.Exchange(ref _aborted, 1) != 0)
        {
            return false;
        }

        Transmission?.Break();

        // shutdown(2) first, so that a send blocked on a full socket buffer fails at once (EPIPE) whatever the runtime
        // does to operations in progress when the socket is closed.
        try
        {
            Socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Not connected any more, or closed already: nothing left to wake.
        }

        Socket.Dispose();
        return true;
    }
}
