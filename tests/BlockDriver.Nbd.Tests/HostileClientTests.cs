using BlockDriver.Abstractions;
using BlockDriver.Nbd.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests;

/// <summary>Clients that break the rules: each gets an error reply or a closed connection, the server keeps
/// serving others, and the device is unchanged.</summary>
public sealed class HostileClientTests : IAsyncLifetime
{
    private const int MiB = 1 << 20;
    private readonly ITestOutputHelper _output;
    private ServerHarness _harness = null!;
    private MemoryBlockDevice _device = null!;
    private MemoryBlockDevice _readOnly = null!;
    private MemoryBlockDevice _big = null!;
    private byte[] _initial = null!;

    public HostileClientTests(ITestOutputHelper output)
    {
        _output = output;
    }

    public async Task InitializeAsync()
    {
        _device = new MemoryBlockDevice(4 * MiB);
        _readOnly = new MemoryBlockDevice(4 * MiB);
        _big = new MemoryBlockDevice(4 * MiB, sectorSize: 4096);
        _initial = TestPatterns.Bytes(42, 4 * MiB);
        foreach (MemoryBlockDevice d in new[] { _device, _readOnly, _big })
        {
            await d.WriteAsync(0, _initial);
        }

        _harness = new ServerHarness(_output,
        [
            new NbdExport("rw", _device),
            new NbdExport("ro", _readOnly) { ReadOnly = true },
            new NbdExport("4k", _big),
        ]);
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    [Fact]
    public async Task Bad_request_magic_closes_the_connection_and_the_server_stays_up()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "rw");
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdWrite, 0, 4096, 1, payload: new byte[4096], magic: 0x12345678);
            Assert.True(await client.IsClosedByServerAsync());
        }

        await AssertServesAndUnchangedAsync();
    }

    [Theory]
    [InlineData((ushort)8)] // RESIZE, experimental
    [InlineData((ushort)9)]
    [InlineData((ushort)0xffff)]
    public async Task Unknown_commands_get_einval_and_the_connection_goes_on(ushort command)
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "rw");
        using (client)
        {
            await client.SendRequestAsync(command, 0, 4096, cookie: 77);
            Reply reply = await client.ReadReplyAsync();
            Assert.Equal((77UL, Wire.EInval), (reply.Cookie, reply.Error));
            await client.SendRequestAsync(Wire.CmdRead, 0, 512, cookie: 78);
            Assert.Equal(_initial[..512], (await client.ReadReplyAsync(512)).Data);
        }
    }

    [Fact]
    public async Task Unknown_command_flags_get_einval()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "rw");
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdWrite, 0, 512, 1, flags: 0x0100, payload: new byte[512]);
            Assert.Equal(Wire.EInval, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdRead, 0, 512, 2, flags: Wire.FlagNoHole);
            Assert.Equal(Wire.EInval, (await client.ReadReplyAsync()).Error);
        }

        await AssertServesAndUnchangedAsync();
    }

    [Fact]
    public async Task Reads_past_the_end_get_einval_and_writes_past_the_end_enospc_with_nothing_written()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "rw");
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdRead, (4 * MiB) - 512, 1024, 1);
            Assert.Equal(Wire.EInval, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdRead, ulong.MaxValue - 511, 512, 2);
            Assert.Equal(Wire.EInval, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdWrite, (4 * MiB) - 512, 1024, 3, payload: new byte[1024]);
            Assert.Equal(Wire.ENoSpc, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdWriteZeroes, 4 * MiB, 512, 4);
            Assert.Equal(Wire.ENoSpc, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdTrim, 0, uint.MaxValue - 511, 5);
            Assert.Equal(Wire.EInval, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdCache, 8 * MiB, 512, 6);
            Assert.Equal(Wire.EInval, (await client.ReadReplyAsync()).Error);
        }

        await AssertServesAndUnchangedAsync();
    }

    [Fact]
    public async Task Requests_misaligned_to_the_advertised_minimum_block_get_einval()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "4k");
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdWrite, 512, 4096, 1, payload: new byte[4096]);
            Assert.Equal(Wire.EInval, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdWrite, 0, 512, 2, payload: new byte[512]);
            Assert.Equal(Wire.EInval, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdRead, 100, 4096, 3);
            Assert.Equal(Wire.EInval, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdWriteZeroes, 4096, 1000, 4);
            Assert.Equal(Wire.EInval, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdRead, 4096, 4096, 5);
            Assert.Equal(_initial.AsSpan(4096, 4096).ToArray(), (await client.ReadReplyAsync(4096)).Data);
        }

        byte[] content = new byte[4 * MiB];
        await _big.ReadAsync(0, content);
        Assert.Equal(_initial, content);
    }

    [Fact]
    public async Task Zero_length_requests_get_einval()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "rw");
        using (client)
        {
            foreach (ushort command in new[] { Wire.CmdRead, Wire.CmdWrite, Wire.CmdTrim, Wire.CmdWriteZeroes, Wire.CmdCache })
            {
                await client.SendRequestAsync(command, 0, 0, command);
                Assert.Equal(Wire.EInval, (await client.ReadReplyAsync()).Error);
            }
        }
    }

    [Fact]
    public async Task A_huge_read_gets_einval_or_eoverflow_with_df_and_the_connection_goes_on()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "rw", structured: true);
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdRead, 0, 0xFFFFFE00, 1);
            Assert.Equal(Wire.EInval, Assert.Single(await client.ReadChunksAsync()).Error);
            await client.SendRequestAsync(Wire.CmdRead, 0, 64 * MiB, 2, Wire.FlagDf);
            Assert.Equal(Wire.EOverflow, Assert.Single(await client.ReadChunksAsync()).Error);
            await client.SendRequestAsync(Wire.CmdRead, 0, 512, 3);
            Assert.Equal(_initial[..512], RawNbdClient.Assemble(await client.ReadChunksAsync(), 0, 512));
        }

        // The budget is returned just after the reply is sent.
        await WaitForAsync(() => _harness.Server.BufferedBytes == 0);
    }

    [Fact]
    public async Task A_write_announcing_gigabytes_closes_the_connection_without_buffering_it()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "rw");
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdWrite, 0, 0xFFFFF000, 1, payload: new byte[64 * 1024]);
            Assert.True(await client.IsClosedByServerAsync());
        }

        Assert.Equal(0, _harness.Server.BufferedBytes);
        await AssertServesAndUnchangedAsync();
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_payload_writes_nothing()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "rw");
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdWrite, 0, 1 * MiB, 1, payload: new byte[300 * 1024]);
        }

        await WaitForAsync(() => _harness.Server.ConnectionCount == 0);
        Assert.Equal(0, _harness.Server.BufferedBytes);
        await AssertServesAndUnchangedAsync();
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_header_or_mid_option_is_dropped()
    {
        using (RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath))
        {
            await client.SendAsync([0x49, 0x48, 0x41]);
        }

        (RawNbdClient c2, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "rw");
        using (c2)
        {
            await c2.SendAsync([0x25, 0x60, 0x95, 0x13, 0, 0]);
        }

        await WaitForAsync(() => _harness.Server.ConnectionCount == 0);
        await AssertServesAndUnchangedAsync();
    }

    [Fact]
    public async Task Writes_to_a_read_only_export_get_eperm_and_change_nothing()
    {
        (RawNbdClient client, _, ushort flags) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "ro");
        using (client)
        {
            Assert.Equal(Wire.TfReadOnly, flags & Wire.TfReadOnly);
            Assert.Equal(0, flags & (Wire.TfSendTrim | Wire.TfSendWriteZeroes));
            await client.SendRequestAsync(Wire.CmdWrite, 0, 4096, 1, Wire.FlagFua, new byte[4096]);
            Assert.Equal(Wire.EPerm, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdTrim, 0, 4096, 2);
            Assert.Equal(Wire.EPerm, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdWriteZeroes, 0, 4096, 3);
            Assert.Equal(Wire.EPerm, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdFlush, 0, 0, 4);
            Assert.Equal(0u, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdRead, 0, 4096, 5);
            Assert.Equal(_initial[..4096], (await client.ReadReplyAsync(4096)).Data);
        }

        byte[] content = new byte[4 * MiB];
        await _readOnly.ReadAsync(0, content);
        Assert.Equal(_initial, content);
    }

    [Fact]
    public async Task Thousands_of_connections_opened_and_dropped_leave_the_server_serving_with_bounded_memory()
    {
        // Three rounds of 1500 hostile connections of four kinds. The first two warm the buffer pools (which keep a
        // bounded number of arrays; on a busy two-core machine the second round still grows them by several MiB);
        // the third must not grow the managed heap further.
        await AssertServesAndUnchangedAsync();
        await OpenAndDropAsync(1500);
        long first = HeapBytes();
        await OpenAndDropAsync(1500);
        long warm = HeapBytes();
        await OpenAndDropAsync(1500);
        long after = HeapBytes();
        _output.WriteLine($"rounds: {first / 1024} {warm / 1024} {after / 1024} KiB");
        _output.WriteLine($"managed heap after the first round {warm / 1024} KiB, after the second {after / 1024} KiB");
        Assert.True(after - warm < 16 * MiB, $"heap grew by {(after - warm) / 1024} KiB in the second round");
        Assert.Equal(0, _harness.Server.BufferedBytes);
        await AssertServesAndUnchangedAsync();
    }

    private async Task OpenAndDropAsync(int count)
    {
        var tasks = new List<Task>();
        for (int i = 0; i < count; i++)
        {
            int kind = i % 4;
            tasks.Add(Task.Run(async () =>
            {
                using RawNbdClient client = await _harness.ConnectAsync();
                if (kind >= 1)
                {
                    await client.ReadGreetingAsync();
                }

                if (kind >= 2)
                {
                    await client.SendAsync(RawNbdClient.U32(3));
                    await client.SendOptionAsync(Wire.OptGo, RawNbdClient.GoData("rw"));
                }

                if (kind == 3)
                {
                    await client.ReadOptionRepliesAsync();
                    await client.SendRequestAsync(Wire.CmdWrite, 0, 2 * MiB, 1, payload: new byte[4096]);
                }
            }));
            if (tasks.Count >= 64)
            {
                await Task.WhenAll(tasks);
                tasks.Clear();
            }
        }

        await Task.WhenAll(tasks);
        await WaitForAsync(() => _harness.Server.ConnectionCount == 0);
    }

    [Fact]
    public async Task Connections_beyond_the_limit_are_closed_at_once()
    {
        await using var harness = new ServerHarness(_output, [new NbdExport("m", new MemoryBlockDevice(MiB))],
            new NbdServerOptions { MaxConnections = 2 });
        using RawNbdClient a = await RawNbdClient.ConnectNegotiatingAsync(harness.SocketPath);
        using RawNbdClient b = await RawNbdClient.ConnectNegotiatingAsync(harness.SocketPath);
        await WaitForAsync(() => harness.Server.ConnectionCount == 2);
        using RawNbdClient c = await harness.ConnectAsync();
        Assert.True(await c.IsClosedByServerAsync());
        a.Dispose();
        await WaitForAsync(() => harness.Server.ConnectionCount == 1);
        using RawNbdClient d = await RawNbdClient.ConnectNegotiatingAsync(harness.SocketPath);
    }

    [Fact]
    public async Task A_stalled_connection_is_closed_by_the_send_timeout_and_returns_every_buffered_byte()
    {
        await using ServerHarness harness = ServerHarness.WithMemory(_output, out _, length: 64 * MiB,
            options: new NbdServerOptions { SendTimeout = TimeSpan.FromSeconds(1) });
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(harness.SocketPath, "mem");
        using (client)
        {
            for (ulong i = 0; i < 3; i++)
            {
                await client.SendRequestAsync(Wire.CmdRead, (i % 2) * 32 * MiB, 32 * MiB, i);
            }

            await WaitForAsync(() => harness.Server.BufferedBytes >= 64L * MiB);
            await WaitForAsync(() => harness.Server.ConnectionCount == 0);
            Assert.Equal(0, harness.Server.BufferedBytes);
            Assert.True(await client.IsClosedByServerAsync());
        }
    }

    [Fact]
    public async Task Stop_with_a_callers_token_closes_stalled_connections_when_it_fires()
    {
        await using ServerHarness harness = ServerHarness.WithMemory(_output, out _, length: 64 * MiB,
            options: new NbdServerOptions { SendTimeout = TimeSpan.Zero, StopTimeout = TimeSpan.FromMinutes(10) });
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(harness.SocketPath, "mem");
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdRead, 0, 32 * MiB, 1);
            await client.SendRequestAsync(Wire.CmdRead, 32 * MiB, 32 * MiB, 2);
            await WaitForAsync(() => harness.Server.BufferedBytes >= 64L * MiB);
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            var watch = System.Diagnostics.Stopwatch.StartNew();
            await harness.Server.StopAsync(deadline.Token);
            _output.WriteLine($"StopAsync returned after {watch.ElapsedMilliseconds} ms");

            // Closed by the server although this client read nothing, and before StopAsync returned.
            Assert.Equal(0, harness.Server.ConnectionCount);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1) + NbdServer.ExportCloseGrace, $"StopAsync took {watch.Elapsed}");
            Assert.True(await client.IsClosedByServerAsync());
        }
    }

    private static long HeapBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private async Task AssertServesAndUnchangedAsync()
    {
        (RawNbdClient client, long size, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "rw");
        using (client)
        {
            Assert.Equal(4L * MiB, size);
            await client.SendRequestAsync(Wire.CmdRead, 0, 4096, 1);
            Assert.Equal(_initial[..4096], (await client.ReadReplyAsync(4096)).Data);
        }

        byte[] content = new byte[4 * MiB];
        await _device.ReadAsync(0, content);
        Assert.True(content.AsSpan().SequenceEqual(_initial), "the export's content changed");
    }

    internal static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached within 20 s");
            await Task.Delay(20);
        }
    }
}
