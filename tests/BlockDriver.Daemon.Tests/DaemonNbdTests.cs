using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace BlockDriver.Daemon.Tests;

/// <summary>The daemon's NBD server against clients that stop reading or talking, over raw bytes on its socket: the
/// Nbd:SendTimeout and Nbd:IdleTimeout settings close them, and SIGTERM with stalled clients ends when the host's
/// shutdown deadline passes instead of waiting for them.</summary>
[Collection(DaemonTestCollection.Name)]
public sealed class DaemonNbdTests(ITestOutputHelper output)
{
    private const int MiB = 1 << 20;

    [Fact]
    public async Task Stalled_and_idle_nbd_clients_are_closed_and_sigterm_honours_the_hosts_deadline()
    {
        await using DaemonTestStore test = await DaemonTestStore.CreateAsync(output);
        DaemonProcess daemon = test.StartDaemon(null, "--Nbd:Socket=run/nbd.sock", "--Nbd:Exports:0=c1",
            "--Nbd:SendTimeout=00:00:02", "--Nbd:IdleTimeout=00:00:02", "--ShutdownTimeout=00:00:01", "--Remount=false");
        string socket = Path.Combine(test.Root, "run", "nbd.sock");
        using (Socket idle = await ConnectAsync(socket, "c1"))
        using (Socket stalled = await StallAsync(socket, "c1"))
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!daemon.AllOutput.Contains("(send timeout)", StringComparison.Ordinal) || !daemon.AllOutput.Contains("(idle timeout)", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, "no send timeout and idle timeout within 30 s:\n" + daemon.AllOutput);
                await Task.Delay(100);
            }
        }

        // New stalled clients, then SIGTERM: the host's ShutdownTimeout (1 s) passes before the send timeout (2 s) or
        // the server's own stop deadline (5 s) would close them; the daemon must not wait for them.
        var clients = new List<Socket>();
        try
        {
            for (int i = 0; i < 4; i++)
            {
                clients.Add(await StallAsync(socket, "c1"));
            }

            var watch = Stopwatch.StartNew();
            int exit = await daemon.TerminateAsync();
            output.WriteLine($"SIGTERM to exit with {clients.Count} stalled NBD clients: {watch.ElapsedMilliseconds} ms, exit {exit}");
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"the daemon took {watch.Elapsed} to stop");
            Assert.Equal(0, exit);
            Assert.Contains("cut short by the caller's deadline", daemon.AllOutput, StringComparison.Ordinal);
            Assert.False(File.Exists(socket));
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    // Connects, negotiates (fixed newstyle, no zeroes) and selects the export with NBD_OPT_GO.
    private static async Task<Socket> ConnectAsync(string path, string export)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), timeout.Token);
            byte[] greeting = await ReceiveAsync(socket, 18, timeout.Token);
            Assert.Equal("NBDMAGICIHAVEOPT", Encoding.ASCII.GetString(greeting, 0, 16));
            byte[] name = Encoding.UTF8.GetBytes(export);
            byte[] go = new byte[4 + 16 + 4 + name.Length + 2];
            BinaryPrimitives.WriteUInt32BigEndian(go, 3); // client flags: FIXED_NEWSTYLE | NO_ZEROES
            BinaryPrimitives.WriteUInt64BigEndian(go.AsSpan(4), 0x49484156454F5054); // IHAVEOPT
            BinaryPrimitives.WriteUInt32BigEndian(go.AsSpan(12), 7); // NBD_OPT_GO
            BinaryPrimitives.WriteUInt32BigEndian(go.AsSpan(16), (uint)(4 + name.Length + 2));
            BinaryPrimitives.WriteUInt32BigEndian(go.AsSpan(20), (uint)name.Length);
            name.CopyTo(go, 24);
            await socket.SendAsync(go, SocketFlags.None, timeout.Token);
            while (true)
            {
                byte[] header = await ReceiveAsync(socket, 20, timeout.Token);
                uint type = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
                await ReceiveAsync(socket, (int)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16)), timeout.Token);
                Assert.True(type is 1 or 3, $"NBD_OPT_GO answered 0x{type:x8}"); // NBD_REP_ACK, NBD_REP_INFO
                if (type == 1)
                {
                    return socket;
                }
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    // A client that asks for three 32 MiB reads and reads none of the replies.
    private static async Task<Socket> StallAsync(string path, string export)
    {
        Socket socket = await ConnectAsync(path, export);
        for (ulong i = 0; i < 3; i++)
        {
            byte[] request = new byte[28];
            BinaryPrimitives.WriteUInt32BigEndian(request, 0x25609513); // NBD_REQUEST_MAGIC
            BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(6), 0); // NBD_CMD_READ
            BinaryPrimitives.WriteUInt64BigEndian(request.AsSpan(8), i);
            BinaryPrimitives.WriteUInt64BigEndian(request.AsSpan(16), i * 32 * MiB);
            BinaryPrimitives.WriteUInt32BigEndian(request.AsSpan(24), 32 * MiB);
            await socket.SendAsync(request, SocketFlags.None);
        }

        return socket;
    }

    private static async Task<byte[]> ReceiveAsync(Socket socket, int count, CancellationToken ct)
    {
        byte[] buffer = new byte[count];
        for (int done = 0; done < count;)
        {
            int n = await socket.ReceiveAsync(buffer.AsMemory(done), SocketFlags.None, ct);
            if (n == 0)
            {
                throw new EndOfStreamException($"the server closed the connection after {done} of {count} bytes");
            }

            done += n;
        }

        return buffer;
    }
}
