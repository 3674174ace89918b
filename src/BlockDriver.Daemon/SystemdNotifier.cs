using System.Net.Sockets;
using System.Text;

namespace BlockDriver.Daemon;

/// <summary>sd_notify(3) without libsystemd: one datagram such as <c>READY=1</c> to the unix socket named by
/// $NOTIFY_SOCKET (a leading '@' names an abstract socket). Outside systemd (no variable) it does nothing.</summary>
internal static class SystemdNotifier
{
    public const string Variable = "NOTIFY_SOCKET";

    /// <summary>Sends <paramref name="state"/> (newline-separated assignments); false when not under systemd.</summary>
    public static bool Notify(string state)
    {
        string? path = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrEmpty(path))
        {
            return false;
        }

        if (path[0] == '@')
        {
            path = "\0" + path[1..];
        }

        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        socket.Send(Encoding.UTF8.GetBytes(state));
        return true;
    }
}
