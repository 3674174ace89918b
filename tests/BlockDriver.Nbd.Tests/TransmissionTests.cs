using System.Buffers.Binary;
using BlockDriver.Abstractions;
using BlockDriver.Nbd.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests;

/// <summary>Every command, with simple and structured replies, against a memory export checked directly.</summary>
public sealed class TransmissionTests : IAsyncLifetime
{
    private const int MiB = 1 << 20;
    private readonly ITestOutputHelper _output;
    private ServerHarness _harness = null!;
    private MemoryBlockDevice _device = null!;

    public TransmissionTests(ITestOutputHelper output)
    {
        _output = output;
    }

    public Task InitializeAsync()
    {
        _harness = ServerHarness.WithMemory(_output, out _device, length: 16 * MiB);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Write_then_read_returns_the_written_bytes(bool structured)
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, structured: structured);
        using (client)
        {
            byte[] data = TestPatterns.Bytes(1, 8192);
            await client.SendRequestAsync(Wire.CmdWrite, 4096, 8192, cookie: 11, payload: data);
            Reply written = await client.ReadReplyAsync();
            Assert.Equal((11UL, 0u), (written.Cookie, written.Error));

            await client.SendRequestAsync(Wire.CmdRead, 4096, 8192, cookie: 12);
            byte[] read;
            if (structured)
            {
                List<Reply> chunks = await client.ReadChunksAsync();
                Assert.All(chunks, c => Assert.Equal(12UL, c.Cookie));
                read = RawNbdClient.Assemble(chunks, 4096, 8192);
            }
            else
            {
                read = (await client.ReadReplyAsync(8192)).Data;
            }

            Assert.Equal(data, read);
            byte[] direct = new byte[8192];
            await _device.ReadAsync(4096, direct);
            Assert.Equal(data, direct);
        }
    }

    [Fact]
    public async Task A_sparse_structured_read_sends_hole_chunks_for_unwritten_ranges()
    {
        byte[] data = TestPatterns.Bytes(2, 64 * 1024);
        await _device.WriteAsync(MiB, data);
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, structured: true);
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdRead, 0, 4 * MiB, cookie: 5);
            List<Reply> chunks = await client.ReadChunksAsync();
            Assert.Contains(chunks, c => c.Type == Wire.ChunkOffsetHole);
            long dataBytes = chunks.Where(c => c.Type == Wire.ChunkOffsetData).Sum(c => c.Data.Length - 8L);
            Assert.True(dataBytes < MiB, $"{dataBytes} bytes of data sent for 64 KiB written");
            byte[] expected = new byte[4 * MiB];
            data.CopyTo(expected, MiB);
            Assert.Equal(expected, RawNbdClient.Assemble(chunks, 0, 4 * MiB));
        }
    }

    [Fact]
    public async Task A_read_with_df_is_one_data_chunk_even_over_holes()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, structured: true);
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdRead, 0, 2 * MiB, cookie: 5, flags: Wire.FlagDf);
            List<Reply> chunks = await client.ReadChunksAsync();
            Reply chunk = Assert.Single(chunks);
            Assert.Equal(Wire.ChunkOffsetData, chunk.Type);
            Assert.Equal(8 + (2 * MiB), chunk.Data.Length);
        }
    }

    [Fact]
    public async Task Df_without_structured_replies_is_an_invalid_flag()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath);
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdRead, 0, 512, cookie: 5, flags: Wire.FlagDf);
            Assert.Equal(Wire.EInval, (await client.ReadReplyAsync()).Error);
        }
    }

    [Fact]
    public async Task Fua_write_flush_trim_and_cache_succeed()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath);
        using (client)
        {
            byte[] data = TestPatterns.Bytes(3, 128 * 1024);
            await client.SendRequestAsync(Wire.CmdWrite, 0, (uint)data.Length, 1, Wire.FlagFua, data);
            Assert.Equal(0u, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdFlush, 0, 0, 2);
            Assert.Equal(0u, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdCache, 0, 1 << 20, 3);
            Assert.Equal(0u, (await client.ReadReplyAsync()).Error);
            await client.SendRequestAsync(Wire.CmdTrim, 0, 64 * 1024, 4, Wire.FlagFua);
            Assert.Equal(0u, (await client.ReadReplyAsync()).Error);

            // MemoryBlockDevice releases whole trimmed chunks: the first 64 KiB read back as zeroes now.
            byte[] after = new byte[128 * 1024];
            await _device.ReadAsync(0, after);
            Assert.Equal(new byte[64 * 1024], after[..(64 * 1024)]);
            Assert.Equal(data[(64 * 1024)..], after[(64 * 1024)..]);
        }
    }

    [Fact]
    public async Task Flush_with_an_offset_is_invalid()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath);
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdFlush, 512, 0, 2);
            Assert.Equal(Wire.EInval, (await client.ReadReplyAsync()).Error);
        }
    }

    [Theory]
    [InlineData((ushort)0)]
    [InlineData(Wire.FlagNoHole)]
    [InlineData(Wire.FlagFastZero)]
    [InlineData(Wire.FlagFua)]
    public async Task Write_zeroes_makes_the_range_read_as_zeroes(ushort flags)
    {
        await _device.WriteAsync(0, TestPatterns.Bytes(4, 256 * 1024));
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath);
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdWriteZeroes, 4096, 200 * 1024, 1, flags);
            Assert.Equal(0u, (await client.ReadReplyAsync()).Error);
            byte[] after = new byte[200 * 1024];
            await _device.ReadAsync(4096, after);
            Assert.Equal(new byte[200 * 1024], after);
        }
    }

    [Fact]
    public async Task Fast_zero_with_no_hole_fails_with_enotsup_and_changes_nothing()
    {
        byte[] data = TestPatterns.Bytes(5, 64 * 1024);
        await _device.WriteAsync(0, data);
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath);
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdWriteZeroes, 0, 64 * 1024, 1, Wire.FlagFastZero | Wire.FlagNoHole);
            Assert.Equal(Wire.ENotSup, (await client.ReadReplyAsync()).Error);
            byte[] after = new byte[64 * 1024];
            await _device.ReadAsync(0, after);
            Assert.Equal(data, after);
        }
    }

    [Fact]
    public async Task Block_status_reports_data_and_holes_of_the_device_map()
    {
        await _device.WriteAsync(2 * MiB, TestPatterns.Bytes(6, 128 * 1024));
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "mem", structured: true, allocation: true);
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdBlockStatus, 0, 16 * MiB, cookie: 3);
            Reply chunk = Assert.Single(await client.ReadChunksAsync());
            Assert.Equal(Wire.ChunkBlockStatus, chunk.Type);
            List<(uint Length, uint Flags)> extents = Descriptors(chunk);
            Assert.Equal([(2u * MiB, 3u), (128u * 1024, 0u), ((16u * MiB) - (2u * MiB) - (128u * 1024), 3u)], extents);

            await client.SendRequestAsync(Wire.CmdBlockStatus, 0, 4096, cookie: 4, flags: Wire.FlagReqOne);
            chunk = Assert.Single(await client.ReadChunksAsync());
            Assert.Equal([(4096u, 3u)], Descriptors(chunk));

            await client.SendRequestAsync(Wire.CmdBlockStatus, 2 * MiB, 16 * MiB, cookie: 5, flags: Wire.FlagReqOne);
            chunk = Assert.Single(await client.ReadChunksAsync());
            Assert.Equal([(128u * 1024, 0u)], Descriptors(chunk));
        }
    }

    [Fact]
    public async Task Block_status_without_a_selected_context_is_invalid()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, structured: true);
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdBlockStatus, 0, 4096, cookie: 3);
            Reply error = Assert.Single(await client.ReadChunksAsync());
            Assert.Equal(Wire.ChunkError, error.Type);
            Assert.Equal(Wire.EInval, error.Error);
        }
    }

    [Fact]
    public async Task Block_status_past_the_end_is_invalid()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "mem", structured: true, allocation: true);
        using (client)
        {
            await client.SendRequestAsync(Wire.CmdBlockStatus, 16 * MiB, 4096, cookie: 3);
            Assert.Equal(Wire.EInval, Assert.Single(await client.ReadChunksAsync()).Error);
        }
    }

    [Fact]
    public async Task Disconnect_answers_requests_in_flight_then_closes()
    {
        (RawNbdClient client, _, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath);
        using (client)
        {
            byte[] data = TestPatterns.Bytes(7, 4096);
            await client.SendRequestAsync(Wire.CmdWrite, 0, 4096, 1, payload: data);
            await client.SendRequestAsync(Wire.CmdDisc, 0, 0, 2);
            Reply reply = await client.ReadReplyAsync();
            Assert.Equal((1UL, 0u), (reply.Cookie, reply.Error));
            Assert.True(await client.IsClosedByServerAsync());
        }

        byte[] stored = new byte[4096];
        await _device.ReadAsync(0, stored);
        Assert.Equal(TestPatterns.Bytes(7, 4096), stored);
    }

    internal static List<(uint Length, uint Flags)> Descriptors(Reply chunk)
    {
        Assert.NotEqual(0u, BinaryPrimitives.ReadUInt32BigEndian(chunk.Data));
        var list = new List<(uint, uint)>();
        for (int i = 4; i < chunk.Data.Length; i += 8)
        {
            list.Add((BinaryPrimitives.ReadUInt32BigEndian(chunk.Data.AsSpan(i)), BinaryPrimitives.ReadUInt32BigEndian(chunk.Data.AsSpan(i + 4))));
        }

        return list;
    }
}
