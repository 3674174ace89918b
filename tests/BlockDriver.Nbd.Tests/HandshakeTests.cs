using System.Buffers.Binary;
using System.Text;
using BlockDriver.Abstractions;
using BlockDriver.Nbd.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests;

/// <summary>Option negotiation, byte by byte, with a raw socket.</summary>
public sealed class HandshakeTests : IAsyncLifetime
{
    private readonly ITestOutputHelper _output;
    private ServerHarness _harness = null!;

    public HandshakeTests(ITestOutputHelper output)
    {
        _output = output;
    }

    public Task InitializeAsync()
    {
        _harness = new ServerHarness(_output,
        [
            new NbdExport("first", new MemoryBlockDevice(1 << 20)) { Description = "the first export" },
            new NbdExport("second", new MemoryBlockDevice(2 << 20)),
            new NbdExport("big-sectors", new MemoryBlockDevice(1 << 20, sectorSize: 4096)),
        ]);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness.DisposeAsync();

    [Fact]
    public async Task Greeting_offers_fixed_newstyle_and_no_zeroes()
    {
        using RawNbdClient client = await _harness.ConnectAsync();
        Assert.Equal(3, await client.ReadGreetingAsync());
    }

    [Fact]
    public async Task Unknown_client_flags_close_the_connection()
    {
        using RawNbdClient client = await _harness.ConnectAsync();
        await client.ReadGreetingAsync();
        await client.SendAsync(RawNbdClient.U32(0x4));
        Assert.True(await client.IsClosedByServerAsync());
    }

    [Fact]
    public async Task Export_name_with_no_zeroes_gets_the_short_reply_and_enters_transmission()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath, clientFlags: 3);
        await client.SendOptionAsync(Wire.OptExportName, Encoding.UTF8.GetBytes("second"));
        byte[] reply = await client.ReadExactlyAsync(10);
        Assert.Equal(2UL << 20, BinaryPrimitives.ReadUInt64BigEndian(reply));
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(8));
        Assert.Equal(Wire.TfHasFlags, flags & Wire.TfHasFlags);
        Assert.Equal(0, flags & Wire.TfSendDf);

        // Transmission: simple replies.
        await client.SendRequestAsync(Wire.CmdRead, 0, 512, cookie: 7);
        Reply read = await client.ReadReplyAsync(512);
        Assert.False(read.Structured);
        Assert.Equal(7UL, read.Cookie);
        Assert.Equal(new byte[512], read.Data);
    }

    [Fact]
    public async Task Export_name_without_no_zeroes_gets_124_zero_bytes_of_padding()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath, clientFlags: 1);
        await client.SendOptionAsync(Wire.OptExportName, []);
        byte[] reply = await client.ReadExactlyAsync(134);
        Assert.Equal(1UL << 20, BinaryPrimitives.ReadUInt64BigEndian(reply));
        Assert.All(reply[10..], b => Assert.Equal(0, b));
        await client.SendRequestAsync(Wire.CmdFlush, 0, 0, cookie: 1);
        Assert.Equal(0u, (await client.ReadReplyAsync()).Error);
    }

    [Fact]
    public async Task Export_name_of_an_unknown_export_closes_the_connection()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(Wire.OptExportName, Encoding.UTF8.GetBytes("nope"));
        Assert.True(await client.IsClosedByServerAsync());
    }

    [Theory]
    [InlineData(Wire.OptExtendedHeaders)]
    [InlineData(4u)] // PEEK_EXPORT, withdrawn
    [InlineData(Wire.OptStartTls)]
    [InlineData(0xdeadu)]
    public async Task Unsupported_options_get_err_unsup_and_negotiation_continues(uint option)
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(option, [1, 2, 3]);
        OptionReply reply = await client.ReadOptionReplyAsync();
        Assert.Equal(option, reply.Option);
        Assert.Equal(Wire.ErrUnsup, reply.Type);

        await client.SendOptionAsync(Wire.OptList, []);
        Assert.Equal(Wire.RepAck, (await client.ReadOptionRepliesAsync())[^1].Type);
    }

    [Fact]
    public async Task Option_with_bad_magic_closes_the_connection()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(Wire.OptList, [], magic: 0x1122334455667788);
        Assert.True(await client.IsClosedByServerAsync());
    }

    [Fact]
    public async Task List_names_every_export_with_its_description_then_acks()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(Wire.OptList, []);
        List<OptionReply> replies = await client.ReadOptionRepliesAsync();
        Assert.Equal(Wire.RepAck, replies[^1].Type);
        var names = new List<string>();
        foreach (OptionReply r in replies[..^1])
        {
            Assert.Equal(Wire.RepServer, r.Type);
            int length = (int)BinaryPrimitives.ReadUInt32BigEndian(r.Data);
            names.Add(Encoding.UTF8.GetString(r.Data, 4, length) + "|" + Encoding.UTF8.GetString(r.Data, 4 + length, r.Data.Length - 4 - length));
        }

        Assert.Equal(["first|the first export", "second|", "big-sectors|"], names);
    }

    [Fact]
    public async Task List_with_data_is_invalid()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(Wire.OptList, [0]);
        Assert.Equal(Wire.ErrInvalid, (await client.ReadOptionReplyAsync()).Type);
    }

    [Fact]
    public async Task Info_describes_the_export_and_stays_in_negotiation()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(Wire.OptInfo, RawNbdClient.GoData("first", Wire.InfoName, Wire.InfoDescription, Wire.InfoBlockSize));
        List<OptionReply> replies = await client.ReadOptionRepliesAsync();
        Assert.Equal(Wire.RepAck, replies[^1].Type);
        Dictionary<ushort, byte[]> infos = replies[..^1].ToDictionary(r => BinaryPrimitives.ReadUInt16BigEndian(r.Data), r => r.Data[2..]);

        Assert.Equal(12, infos[Wire.InfoExport].Length + 2);
        Assert.Equal(1UL << 20, BinaryPrimitives.ReadUInt64BigEndian(infos[Wire.InfoExport]));
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(infos[Wire.InfoExport].AsSpan(8));
        ushort expected = Wire.TfHasFlags | Wire.TfSendFlush | Wire.TfSendFua | Wire.TfSendTrim | Wire.TfSendWriteZeroes
            | Wire.TfCanMultiConn | Wire.TfSendCache | Wire.TfSendFastZero;
        Assert.Equal(expected, flags);
        Assert.Equal("first", Encoding.UTF8.GetString(infos[Wire.InfoName]));
        Assert.Equal("the first export", Encoding.UTF8.GetString(infos[Wire.InfoDescription]));
        Assert.Equal(512u, BinaryPrimitives.ReadUInt32BigEndian(infos[Wire.InfoBlockSize]));
        Assert.Equal(4096u, BinaryPrimitives.ReadUInt32BigEndian(infos[Wire.InfoBlockSize].AsSpan(4)));
        Assert.Equal(32u << 20, BinaryPrimitives.ReadUInt32BigEndian(infos[Wire.InfoBlockSize].AsSpan(8)));

        // Still negotiating: a GO follows and succeeds.
        await client.SendOptionAsync(Wire.OptGo, RawNbdClient.GoData("first"));
        Assert.Equal(Wire.RepAck, (await client.ReadOptionRepliesAsync())[^1].Type);
        await client.SendRequestAsync(Wire.CmdFlush, 0, 0, 9);
        Assert.Equal(0u, (await client.ReadReplyAsync()).Error);
    }

    [Fact]
    public async Task Go_with_the_empty_name_serves_the_first_export()
    {
        (RawNbdClient client, long size, _) = await RawNbdClient.ConnectToExportAsync(_harness.SocketPath, "");
        using (client)
        {
            Assert.Equal(1L << 20, size);
        }
    }

    [Fact]
    public async Task Go_for_an_unknown_export_fails_and_negotiation_continues()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(Wire.OptGo, RawNbdClient.GoData("missing"));
        OptionReply reply = await client.ReadOptionReplyAsync();
        Assert.Equal(Wire.ErrUnknown, reply.Type);
        Assert.Contains("missing", reply.Text, StringComparison.Ordinal);
        await client.SendOptionAsync(Wire.OptGo, RawNbdClient.GoData("second"));
        Assert.Equal(Wire.RepAck, (await client.ReadOptionRepliesAsync())[^1].Type);
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0 })] // shorter than the fixed part
    [InlineData(new byte[] { 0, 0, 0, 200, 0, 0 })] // name longer than the data
    [InlineData(new byte[] { 0, 0, 0, 0, 0, 2, 0, 3 })] // two info requests announced, one sent
    public async Task Malformed_go_data_is_invalid(byte[] data)
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(Wire.OptGo, data);
        Assert.Equal(Wire.ErrInvalid, (await client.ReadOptionReplyAsync()).Type);
        await client.SendOptionAsync(Wire.OptGo, RawNbdClient.GoData(""));
        Assert.Equal(Wire.RepAck, (await client.ReadOptionRepliesAsync())[^1].Type);
    }

    [Fact]
    public async Task A_4k_sector_export_requires_the_block_size_request()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(Wire.OptGo, RawNbdClient.GoData("big-sectors"));
        List<OptionReply> replies = await client.ReadOptionRepliesAsync();
        Assert.Equal(Wire.ErrBlockSizeReqd, replies[^1].Type);
        OptionReply sizes = replies.Single(r => r.Type == Wire.RepInfo && BinaryPrimitives.ReadUInt16BigEndian(r.Data) == Wire.InfoBlockSize);
        Assert.Equal(4096u, BinaryPrimitives.ReadUInt32BigEndian(sizes.Data.AsSpan(2)));

        await client.SendOptionAsync(Wire.OptGo, RawNbdClient.GoData("big-sectors", Wire.InfoBlockSize));
        Assert.Equal(Wire.RepAck, (await client.ReadOptionRepliesAsync())[^1].Type);
    }

    [Fact]
    public async Task Abort_is_acknowledged_then_the_server_closes()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(Wire.OptAbort, []);
        Assert.Equal(Wire.RepAck, (await client.ReadOptionReplyAsync()).Type);
        Assert.True(await client.IsClosedByServerAsync());
    }

    [Fact]
    public async Task Structured_reply_is_acknowledged_once_and_refused_with_data_or_twice()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(Wire.OptStructuredReply, [1]);
        Assert.Equal(Wire.ErrInvalid, (await client.ReadOptionReplyAsync()).Type);
        await client.SendOptionAsync(Wire.OptStructuredReply, []);
        Assert.Equal(Wire.RepAck, (await client.ReadOptionReplyAsync()).Type);
        await client.SendOptionAsync(Wire.OptStructuredReply, []);
        Assert.Equal(Wire.ErrInvalid, (await client.ReadOptionReplyAsync()).Type);

        // DF is advertised only with structured replies.
        await client.SendOptionAsync(Wire.OptGo, RawNbdClient.GoData("first"));
        OptionReply export = (await client.ReadOptionRepliesAsync()).First(r => r.Type == Wire.RepInfo);
        Assert.Equal(Wire.TfSendDf, BinaryPrimitives.ReadUInt16BigEndian(export.Data.AsSpan(10)) & Wire.TfSendDf);
    }

    [Fact]
    public async Task Meta_contexts_need_structured_replies()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(Wire.OptListMetaContext, RawNbdClient.MetaContextData("first"));
        Assert.Equal(Wire.ErrInvalid, (await client.ReadOptionReplyAsync()).Type);
        await client.SendOptionAsync(Wire.OptSetMetaContext, RawNbdClient.MetaContextData("first", "base:allocation"));
        Assert.Equal(Wire.ErrInvalid, (await client.ReadOptionReplyAsync()).Type);
    }

    [Theory]
    [InlineData(new string[0], true)]
    [InlineData(new[] { "base:" }, true)]
    [InlineData(new[] { "base:allocation" }, true)]
    [InlineData(new[] { "qemu:dirty-bitmap:x", "base:nothing" }, false)]
    public async Task List_meta_context_offers_base_allocation(string[] queries, bool listed)
    {
        using RawNbdClient client = await StructuredClientAsync();
        await client.SendOptionAsync(Wire.OptListMetaContext, RawNbdClient.MetaContextData("first", queries));
        List<OptionReply> replies = await client.ReadOptionRepliesAsync();
        Assert.Equal(Wire.RepAck, replies[^1].Type);
        string[] contexts = replies[..^1].Select(r => Encoding.UTF8.GetString(r.Data, 4, r.Data.Length - 4)).ToArray();
        Assert.Equal(listed ? ["base:allocation"] : [], contexts);
    }

    [Fact]
    public async Task Set_meta_context_selects_base_allocation_with_a_nonzero_id_and_ignores_the_rest()
    {
        using RawNbdClient client = await StructuredClientAsync();
        await client.SendOptionAsync(Wire.OptSetMetaContext, RawNbdClient.MetaContextData("first", "base:", "x-unknown:thing", "base:allocation"));
        List<OptionReply> replies = await client.ReadOptionRepliesAsync();
        Assert.Equal(2, replies.Count);
        Assert.Equal(Wire.RepMetaContext, replies[0].Type);
        Assert.NotEqual(0u, BinaryPrimitives.ReadUInt32BigEndian(replies[0].Data));
        Assert.Equal("base:allocation", Encoding.UTF8.GetString(replies[0].Data, 4, replies[0].Data.Length - 4));
    }

    [Theory]
    [InlineData(new byte[] { 0, 0, 0 })]
    [InlineData(new byte[] { 0, 0, 0, 0, 0, 0, 0, 1 })] // one query announced, none sent
    [InlineData(new byte[] { 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 98 })] // query longer than the data
    [InlineData(new byte[] { 0, 0, 0, 0, 255, 255, 255, 255 })] // four billion queries
    public async Task Malformed_meta_context_data_is_invalid(byte[] data)
    {
        using RawNbdClient client = await StructuredClientAsync();
        await client.SendOptionAsync(Wire.OptSetMetaContext, data);
        Assert.Equal(Wire.ErrInvalid, (await client.ReadOptionReplyAsync()).Type);
        await client.SendOptionAsync(Wire.OptListMetaContext, data);
        Assert.Equal(Wire.ErrInvalid, (await client.ReadOptionReplyAsync()).Type);
    }

    [Fact]
    public async Task Meta_context_of_an_unknown_export_is_refused()
    {
        using RawNbdClient client = await StructuredClientAsync();
        await client.SendOptionAsync(Wire.OptSetMetaContext, RawNbdClient.MetaContextData("ghost", "base:allocation"));
        Assert.Equal(Wire.ErrUnknown, (await client.ReadOptionReplyAsync()).Type);
    }

    [Fact]
    public async Task Oversized_option_data_is_refused_as_too_big_and_negotiation_continues()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(Wire.OptGo, new byte[100_000]);
        Assert.Equal(Wire.ErrTooBig, (await client.ReadOptionReplyAsync()).Type);
        await client.SendOptionAsync(Wire.OptGo, RawNbdClient.GoData("first"));
        Assert.Equal(Wire.RepAck, (await client.ReadOptionRepliesAsync())[^1].Type);
    }

    [Fact]
    public async Task An_option_claiming_gigabytes_of_data_closes_the_connection()
    {
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        byte[] header = new byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(header, Wire.IHaveOpt);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(8), Wire.OptGo);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(12), 0xFFFFFFFF);
        await client.SendAsync(header);
        Assert.True(await client.IsClosedByServerAsync());
    }

    [Fact]
    public async Task A_client_that_never_finishes_negotiating_is_dropped_after_the_timeout()
    {
        await using var harness = new ServerHarness(_output, [new NbdExport("m", new MemoryBlockDevice(1 << 20))],
            new NbdServerOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(300) });
        using RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(harness.SocketPath);
        Assert.True(await client.IsClosedByServerAsync());
    }

    private async Task<RawNbdClient> StructuredClientAsync()
    {
        RawNbdClient client = await RawNbdClient.ConnectNegotiatingAsync(_harness.SocketPath);
        await client.SendOptionAsync(Wire.OptStructuredReply, []);
        Assert.Equal(Wire.RepAck, (await client.ReadOptionReplyAsync()).Type);
        return client;
    }
}
