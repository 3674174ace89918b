using BlockDriver.Abstractions;
using BlockDriver.Nbd.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests;

/// <summary>Out-of-order replies, bounded in-flight work, multi-connection flush semantics, shutdown.</summary>
public sealed class ConcurrencyTests
{
    private const int MiB = 1 << 20;
    private readonly ITestOutputHelper _output;

    public ConcurrencyTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public async Task A_slow_request_does_not_hold_back_later_replies()
    {
        var device = new GatedBlockDevice(4 * MiB);
        await using var harness = new ServerHarness(_output, [new NbdExport("g", device)]);
        TaskCompletionSource gate = device.Gate(MiB);
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(harness.SocketPath);
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdRead, MiB, 4096, cookie: 1);
            await client.SendRequestAsync(Wire.CmdRead, 0, 4096, cookie: 2);
            await client.SendRequestAsync(Wire.CmdWrite, 8192, 4096, cookie: 3, payload: TestPatterns.Bytes(1, 4096));
            var early = new HashSet<ulong> { (await client.ReadReplyAsync(4096)).Cookie };
            Reply second = await client.ReadReplyAsync(early.Contains(2) ? 0 : 4096);
            early.Add(second.Cookie);
            Assert.Equal(new HashSet<ulong> { 2, 3 }, early);

            gate.SetResult();
            Reply first = await client.ReadReplyAsync(4096);
            Assert.Equal((1UL, 0u), (first.Cookie, first.Error));
        }
    }

    [Fact]
    public async Task A_pipelined_burst_gets_every_reply_while_a_slow_request_still_runs()
    {
        // Replies are flushed together when several wait for the send lock, and large read data bypasses the
        // pipe: no reply may be left unflushed behind the gated request, and large and small replies must not
        // interleave. 4 KiB writes (simple replies) and 4 KiB reads (inline on the read loop), 1 MiB reads (sent
        // straight to the socket); every read is of data written before the burst, since the protocol does not
        // order requests in flight together.
        var device = new GatedBlockDevice(8 * MiB);
        await using var harness = new ServerHarness(_output, [new NbdExport("g", device)]);
        byte[] large = TestPatterns.Bytes(7, 2 * MiB);
        await device.WriteAsync(2 * MiB, large);
        byte[] smalls = TestPatterns.Bytes(8, 40 * 4096);
        await device.WriteAsync(0, smalls);
        TaskCompletionSource gate = device.Gate(7 * MiB);
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(harness.SocketPath, structured: true);
        using (client)
        {
            // Opened whatever happens, so that a failed assertion is reported instead of a server that cannot stop.
            using var open = new GateOpener(gate);
            await client.SendRequestAsync(Wire.CmdRead, 7 * MiB, 4096, cookie: 1);
            var expected = new Dictionary<ulong, (ulong Offset, byte[]? Data)>();
            ulong cookie = 2;
            for (int i = 0; i < 40; i++)
            {
                ulong offset = (ulong)i * 4096;
                await client.SendRequestAsync(Wire.CmdWrite, (ulong)(4 * MiB) + offset, 4096, cookie, payload: TestPatterns.Bytes(100 + i, 4096));
                expected[cookie++] = (offset, null);
                await client.SendRequestAsync(Wire.CmdRead, offset, 4096, cookie);
                expected[cookie++] = (offset, smalls.AsSpan((int)offset, 4096).ToArray());
                if (i % 8 == 0)
                {
                    ulong at = (ulong)(2 * MiB) + (ulong)(i / 8 % 2 * MiB);
                    await client.SendRequestAsync(Wire.CmdRead, at, MiB, cookie);
                    expected[cookie++] = (at, large.AsSpan((int)(at - (2 * MiB)), MiB).ToArray());
                }
            }

            while (expected.Count > 0)
            {
                Reply first = await client.ReadReplyAsync();
                Assert.True(expected.Remove(first.Cookie, out (ulong Offset, byte[]? Data) want), $"unexpected or repeated reply for cookie {first.Cookie}");
                if (want.Data is null)
                {
                    // A write: the server may answer with a simple reply even when structured replies are on.
                    Assert.Equal(0u, first.Error);
                    continue;
                }

                Assert.True(first.Structured, $"the read {first.Cookie} got a simple reply");
                var chunks = new List<Reply> { first };
                while ((chunks[^1].Flags & Wire.ReplyFlagDone) == 0)
                {
                    chunks.Add(await client.ReadReplyAsync());
                }

                Assert.All(chunks, c => Assert.Equal(first.Cookie, c.Cookie));
                Assert.Equal(want.Data, RawNbdClient.Assemble(chunks, want.Offset, want.Data.Length));
            }

            byte[] last = new byte[4096];
            await device.ReadAsync((4 * MiB) + (39 * 4096), last);
            Assert.Equal(TestPatterns.Bytes(139, 4096), last);
            gate.SetResult();
            Assert.Equal(1UL, (await client.ReadChunksAsync())[0].Cookie);
        }
    }

    [Fact]
    public async Task In_flight_requests_per_connection_are_capped()
    {
        var device = new GatedBlockDevice(4 * MiB);
        await using var harness = new ServerHarness(_output, [new NbdExport("g", device)],
            new NbdServerOptions { MaxRequestsPerConnection = 4 });
        TaskCompletionSource gate = device.Gate(0);
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(harness.SocketPath);
        using (client)
        {
            for (ulong i = 0; i < 50; i++)
            {
                await client.SendRequestAsync(Wire.CmdRead, 0, 64 * 1024, cookie: i);
            }

            await HostileClientTests.WaitForAsync(() => device.MaxConcurrentCalls >= 4);
            await Task.Delay(200);
            Assert.Equal(4, device.MaxConcurrentCalls);
            Assert.True(harness.Server.BufferedBytes <= 4 * 64 * 1024, $"{harness.Server.BufferedBytes} bytes buffered");
            gate.SetResult();
            for (int i = 0; i < 50; i++)
            {
                Assert.Equal(0u, (await client.ReadReplyAsync(64 * 1024)).Error);
            }
        }
    }

    [Fact]
    public async Task Buffered_bytes_stay_under_the_server_wide_cap_with_many_writers()
    {
        var device = new GatedBlockDevice(64 * MiB);
        await using var harness = new ServerHarness(_output, [new NbdExport("g", device)],
            new NbdServerOptions { MaxBufferedBytes = 32 * MiB, MaxBufferedBytesPerConnection = 32 * MiB });
        TaskCompletionSource gate = device.Gate(0);
        var clients = new List<RawNbdClient>();
        try
        {
            for (int c = 0; c < 4; c++)
            {
                (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(harness.SocketPath);
                clients.Add(client);

                // Each client queues 8 MiB writes at the gated offset; without the cap the server would buffer 4 × 64 MiB.
                _ = Task.Run(async () =>
                {
                    byte[] payload = new byte[8 * MiB];
                    for (ulong i = 0; i < 8; i++)
                    {
                        await client.SendRequestAsync(Wire.CmdWrite, 0, (uint)payload.Length, i, payload: payload);
                    }
                });
            }

            await HostileClientTests.WaitForAsync(() => harness.Server.BufferedBytes >= 24 * MiB);
            await Task.Delay(300);
            Assert.True(harness.Server.BufferedBytes <= 32 * MiB, $"{harness.Server.BufferedBytes} bytes buffered");
            gate.SetResult();
            foreach (RawNbdClient client in clients)
            {
                for (int i = 0; i < 8; i++)
                {
                    Assert.Equal(0u, (await client.ReadReplyAsync()).Error);
                }
            }
        }
        finally
        {
            gate.TrySetResult();
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task A_flush_on_one_connection_makes_writes_completed_on_another_durable()
    {
        var device = new GatedBlockDevice(4 * MiB);
        await using var harness = new ServerHarness(_output, [new NbdExport("g", device)]);
        (RawNbdClient writer, _, ushort flags) = await RawNbdClient.ConnectToExportAsync(harness.SocketPath);
        (RawNbdClient flusher, _, _) = await RawNbdClient.ConnectToExportAsync(harness.SocketPath);
        using (writer)
        using (flusher)
        {
            Assert.Equal(Wire.TfCanMultiConn, flags & Wire.TfCanMultiConn);
            byte[] data = TestPatterns.Bytes(9, 64 * 1024);
            await writer.SendRequestAsync(Wire.CmdWrite, MiB, (uint)data.Length, 1, payload: data);
            Assert.Equal(0u, (await writer.ReadReplyAsync()).Error);
            byte[] durable = new byte[data.Length];
            await device.Durable.ReadAsync(MiB, durable);
            Assert.NotEqual(data, durable);

            await flusher.SendRequestAsync(Wire.CmdFlush, 0, 0, 2);
            Assert.Equal(0u, (await flusher.ReadReplyAsync()).Error);
            await device.Durable.ReadAsync(MiB, durable);
            Assert.Equal(data, durable);

            // And the data is visible to reads on the other connection.
            await flusher.SendRequestAsync(Wire.CmdRead, MiB, (uint)data.Length, 3);
            Assert.Equal(data, (await flusher.ReadReplyAsync(data.Length)).Data);
        }
    }

    [Fact]
    public async Task A_fua_write_is_durable_when_answered()
    {
        var device = new GatedBlockDevice(4 * MiB);
        await using var harness = new ServerHarness(_output, [new NbdExport("g", device)]);
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(harness.SocketPath);
        using (client)
        {
            byte[] data = TestPatterns.Bytes(10, 4096);
            await client.SendRequestAsync(Wire.CmdWrite, 0, 4096, 1, Wire.FlagFua, data);
            Assert.Equal(0u, (await client.ReadReplyAsync()).Error);
            byte[] durable = new byte[4096];
            await device.Durable.ReadAsync(0, durable);
            Assert.Equal(data, durable);
        }
    }

    [Fact]
    public async Task All_connections_share_one_device_opened_once()
    {
        int opened = 0;
        var device = new MemoryBlockDevice(MiB);
        var export = new NbdExport("lazy", _ =>
        {
            Interlocked.Increment(ref opened);
            return ValueTask.FromResult<IBlockDevice>(device);
        });
        await using var harness = new ServerHarness(_output, [export]);
        var clients = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => RawNbdClient.ConnectToExportAsync(harness.SocketPath)));
        foreach ((RawNbdClient client, _, _) in clients)
        {
            client.Dispose();
        }

        Assert.Equal(1, opened);
    }

    [Fact]
    public async Task Stopping_answers_requests_in_flight_flushes_and_disposes_the_device_and_removes_the_socket()
    {
        var device = new GatedBlockDevice(4 * MiB);
        var harness = new ServerHarness(_output, [new NbdExport("g", _ => ValueTask.FromResult<IBlockDevice>(device))]);
        try
        {
            TaskCompletionSource gate = device.Gate(0);
            (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(harness.SocketPath);
            using (client)
            {
                byte[] data = TestPatterns.Bytes(11, 4096);
                await client.SendRequestAsync(Wire.CmdWrite, 0, 4096, 1, payload: data);
                await HostileClientTests.WaitForAsync(() => device.MaxConcurrentCalls == 1);
                Task stop = harness.Server.StopAsync();
                await Task.Delay(100);
                Assert.False(stop.IsCompleted);
                gate.SetResult();
                Assert.Equal((1UL, 0u), ((await client.ReadReplyAsync()).Cookie, 0u));
                await stop.WaitAsync(TimeSpan.FromSeconds(20));
                Assert.True(await client.IsClosedByServerAsync());
                Assert.True(device.Disposed);
                byte[] durable = new byte[4096];
                await device.Durable.ReadAsync(0, durable);
                Assert.Equal(data, durable);
                Assert.False(File.Exists(harness.SocketPath));
            }
        }
        finally
        {
            await harness.DisposeAsync();
        }
    }
}

/// <summary>Opens a <see cref="GatedBlockDevice"/> gate when disposed (a no-op if the test opened it).</summary>
internal sealed class GateOpener(TaskCompletionSource gate) : IDisposable
{
    public void Dispose() => gate.TrySetResult();
}
