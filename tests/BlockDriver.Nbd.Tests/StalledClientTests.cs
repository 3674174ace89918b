using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BlockDriver.Nbd.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests;

/// <summary>Clients that stop reading their replies, or stop talking, against <c>blockdriver serve nbd</c> as a
/// process over raw sockets: they cannot starve the other clients (each connection keeps a reserve of the buffer
/// budget), they are closed after the send timeout, idle connections after the idle timeout, and SIGTERM does not
/// wait for them past the stop deadline.</summary>
public sealed class StalledClientTests : RealClientFixture
{
    // Eight stalled clients with the default limits: each asks for three 32 MiB reads and reads nothing, so each holds
    // its 64 MiB cap (two replies), which before the reserves was the whole 512 MiB server budget.
    private const int Stalled = 8;

    public StalledClientTests(ITestOutputHelper output)
        : base(output)
    {
    }

    [Fact]
    public async Task A_ninth_clients_4k_read_is_answered_while_eight_clients_hold_their_64_MiB_unread()
    {
        await BlockDriverCli.RunOkAsync(Output, Dir, "img", "create", "disk.vhdx", "64M");
        await using ServeProcess server = await ServeAsync("disk.vhdx");
        List<RawNbdClient> stalled = await StallAsync(server);
        try
        {
            var watch = Stopwatch.StartNew();
            (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(server.SocketPath);
            using (client)
            {
                await client.SendRequestAsync(Wire.CmdRead, 4096, 4096, cookie: 9);
                Reply reply = await client.ReadReplyAsync(4096);
                Assert.Equal((9UL, 0u), (reply.Cookie, reply.Error));
                Assert.Equal(new byte[4096], reply.Data);
            }

            Output.WriteLine($"ninth client: handshake and 4 KiB read in {watch.ElapsedMilliseconds} ms");
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"the 4 KiB read took {watch.Elapsed}");
        }
        finally
        {
            stalled.ForEach(c => c.Dispose());
        }

        await server.StopAsync();
    }

    [Fact]
    public async Task Sigterm_with_stalled_clients_exits_within_the_stop_deadline()
    {
        await BlockDriverCli.RunOkAsync(Output, Dir, "img", "create", "disk.vhdx", "64M");
        await using ServeProcess server = await ServeAsync("disk.vhdx");
        List<RawNbdClient> stalled = await StallAsync(server);
        try
        {
            var watch = Stopwatch.StartNew();
            await server.StopAsync();
            Output.WriteLine($"SIGTERM to exit: {watch.ElapsedMilliseconds} ms");

            // The stop deadline is 5 s; the rest is the stop itself on a busy machine.
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"serve nbd took {watch.Elapsed} to stop");
            Assert.Contains("did not finish within", server.Output, StringComparison.Ordinal);
        }
        finally
        {
            stalled.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task Replies_a_client_does_not_read_close_its_connection_after_the_send_timeout_and_free_its_budget()
    {
        await BlockDriverCli.RunOkAsync(Output, Dir, "img", "create", "disk.vhdx", "64M");
        await using ServeProcess server = await ServeAsync("--send-timeout", "2s", "disk.vhdx");
        var watch = Stopwatch.StartNew();
        List<RawNbdClient> stalled = await StallAsync(server);
        try
        {
            // Each stalled connection is named in a Warning with its pid (ours) and closed.
            await WaitForAsync(() => SendTimeoutLines(server.Output).Count == Stalled, TimeSpan.FromSeconds(30));
            Output.WriteLine($"all {Stalled} closed by the send timeout {watch.ElapsedMilliseconds} ms after they connected");
            Assert.All(SendTimeoutLines(server.Output), l => Assert.Contains($"pid {Environment.ProcessId},", l, StringComparison.Ordinal));
            foreach (RawNbdClient client in stalled)
            {
                Assert.True(await client.IsClosedByServerAsync(), "a stalled connection is still open");
            }
        }
        finally
        {
            stalled.ForEach(c => c.Dispose());
        }

        // Their shared budget is back: reads needing it (more than the reserve) are answered at once.
        (RawNbdClient fresh, _, _) = await RawNbdClient.ConnectToExportAsync(server.SocketPath);
        using (fresh)
        {
            var read = Stopwatch.StartNew();
            await fresh.SendRequestAsync(Wire.CmdRead, 0, 32 << 20, cookie: 1);
            await fresh.SendRequestAsync(Wire.CmdRead, 32 << 20, 32 << 20, cookie: 2);
            Assert.Equal(0u, (await fresh.ReadReplyAsync(32 << 20)).Error);
            Assert.Equal(0u, (await fresh.ReadReplyAsync(32 << 20)).Error);
            Assert.True(read.Elapsed < TimeSpan.FromSeconds(10), $"two 32 MiB reads took {read.Elapsed}");
        }

        await server.StopAsync();
    }

    [Fact]
    public async Task An_idle_connection_closes_after_the_idle_timeout_and_a_busy_one_stays()
    {
        await BlockDriverCli.RunOkAsync(Output, Dir, "img", "create", "disk.vhdx", "64M");
        await using ServeProcess server = await ServeAsync("--idle-timeout", "2s", "disk.vhdx");
        (RawNbdClient idle, _, _) = await RawNbdClient.ConnectToExportAsync(server.SocketPath);
        (RawNbdClient busy, _, _) = await RawNbdClient.ConnectToExportAsync(server.SocketPath);
        using (idle)
        using (busy)
        {
            var watch = Stopwatch.StartNew();
            Task<bool> closed = idle.IsClosedByServerAsync();

            // A request every half second for five seconds: never idle for two.
            for (ulong i = 1; watch.Elapsed < TimeSpan.FromSeconds(5); i++)
            {
                await busy.SendRequestAsync(Wire.CmdRead, 0, 4096, cookie: i);
                Assert.Equal(0u, (await busy.ReadReplyAsync(4096)).Error);
                await Task.Delay(500);
            }

            Assert.True(await closed, "the idle connection was not closed");
            Output.WriteLine($"idle connection closed; busy one still served after {watch.ElapsedMilliseconds} ms");
            await busy.SendRequestAsync(Wire.CmdRead, 0, 4096, cookie: 99);
            Assert.Equal(0u, (await busy.ReadReplyAsync(4096)).Error);
        }

        await server.StopAsync();
    }

    [Fact]
    public async Task Tcp_beyond_loopback_warns_that_nbd_has_no_authentication_and_loopback_does_not()
    {
        await BlockDriverCli.RunOkAsync(Output, Dir, "img", "create", "disk.vhdx", "1M");
        await using (ServeProcess open = await ServeAsync("--tcp", $"0.0.0.0:{FreePort()}", "disk.vhdx"))
        {
            await WaitForAsync(() => open.Output.Contains("no authentication", StringComparison.Ordinal), TimeSpan.FromSeconds(10));
            await open.StopAsync();
        }

        await using ServeProcess local = await ServeAsync("--tcp", $"127.0.0.1:{FreePort()}", "disk.vhdx");
        await local.StopAsync();
        Assert.DoesNotContain("no authentication", local.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--send-timeout", "soon")]
    [InlineData("--idle-timeout", "5x")]
    [InlineData("--send-timeout", "25h")]
    public async Task A_malformed_timeout_is_refused_before_anything_is_served(string option, string value)
    {
        ProcessResult result = await BlockDriverCli.RunAsync(Output, Dir, "serve", "nbd", "--socket", PathOf("nbd.sock"), option, value, "disk.vhdx");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{option} {value}: expected a duration", result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(PathOf("nbd.sock")));
    }

    // Eight clients negotiate, ask for three 32 MiB reads each and read nothing; returns once the server holds their
    // replies (its resident memory grew by the shared pool, 384 MiB, or more).
    private async Task<List<RawNbdClient>> StallAsync(ServeProcess server)
    {
        long before = server.ResidentBytes();
        var clients = new List<RawNbdClient>();
        for (int i = 0; i < Stalled; i++)
        {
            (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(server.SocketPath);
            clients.Add(client);
            await client.SendRequestAsync(Wire.CmdRead, 0, 32 << 20, cookie: 1);
            await client.SendRequestAsync(Wire.CmdRead, 32 << 20, 32 << 20, cookie: 2);
            await client.SendRequestAsync(Wire.CmdRead, 0, 32 << 20, cookie: 3);
        }

        await WaitForAsync(() => server.ResidentBytes() - before >= 380L << 20, TimeSpan.FromSeconds(30));
        Output.WriteLine($"stalled: the server's RSS grew from {before >> 20} to {server.ResidentBytes() >> 20} MiB");
        return clients;
    }

    private static List<string> SendTimeoutLines(string output) =>
        output.Split('\n').Where(l => l.Contains("(send timeout)", StringComparison.Ordinal)).ToList();

    private static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"condition not reached within {timeout}");
            await Task.Delay(50);
        }
    }
}
