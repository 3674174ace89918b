using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace BlockDriver.Nbd.Tests.Support;

/// <summary>A deliberately dumb NBD client on a raw socket: every byte the tests send is written here by hand, and
/// every read has a timeout so a server that stops answering fails the test instead of hanging it.</summary>
public sealed class RawNbdClient : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly Socket _socket;

    private RawNbdClient(Socket socket)
    {
        _socket = socket;
    }

    public static async Task<RawNbdClient> ConnectAsync(string socketPath)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath));
        return new RawNbdClient(socket);
    }

    /// <summary>Connects, checks the greeting, and sends FIXED_NEWSTYLE | NO_ZEROES.</summary>
    public static async Task<RawNbdClient> ConnectNegotiatingAsync(string socketPath, uint clientFlags = 3)
    {
        RawNbdClient client = await ConnectAsync(socketPath);
        ushort flags = await client.ReadGreetingAsync();
        Assert.Equal(3, flags);
        await client.SendAsync(U32(clientFlags));
        return client;
    }

    /// <summary>Connects and negotiates (optionally structured replies and base:allocation), then NBD_OPT_GO.</summary>
    public static async Task<(RawNbdClient Client, long Size, ushort Flags)> ConnectToExportAsync(
        string socketPath, string export = "", bool structured = false, bool allocation = false)
    {
        RawNbdClient client = await ConnectNegotiatingAsync(socketPath);
        if (structured)
        {
            await client.SendOptionAsync(Wire.OptStructuredReply, []);
            Assert.Equal(Wire.RepAck, (await client.ReadOptionReplyAsync()).Type);
        }

        if (allocation)
        {
            await client.SendOptionAsync(Wire.OptSetMetaContext, MetaContextData(export, "base:allocation"));
            OptionReply context = await client.ReadOptionReplyAsync();
            Assert.Equal(Wire.RepMetaContext, context.Type);
            Assert.Equal(Wire.RepAck, (await client.ReadOptionReplyAsync()).Type);
        }

        await client.SendOptionAsync(Wire.OptGo, GoData(export, Wire.InfoBlockSize));
        long size = -1;
        ushort flags = 0;
        while (true)
        {
            OptionReply reply = await client.ReadOptionReplyAsync();
            if (reply.Type == Wire.RepAck)
            {
                break;
            }

            Assert.Equal(Wire.RepInfo, reply.Type);
            if (BinaryPrimitives.ReadUInt16BigEndian(reply.Data) == Wire.InfoExport)
            {
                size = (long)BinaryPrimitives.ReadUInt64BigEndian(reply.Data.AsSpan(2));
                flags = BinaryPrimitives.ReadUInt16BigEndian(reply.Data.AsSpan(10));
            }
        }

        Assert.True(size >= 0, "GO sent no NBD_INFO_EXPORT");
        return (client, size, flags);
    }

    public async Task<ushort> ReadGreetingAsync()
    {
        byte[] greeting = await ReadExactlyAsync(18);
        Assert.Equal(Wire.NbdMagic, BinaryPrimitives.ReadUInt64BigEndian(greeting));
        Assert.Equal(Wire.IHaveOpt, BinaryPrimitives.ReadUInt64BigEndian(greeting.AsSpan(8)));
        return BinaryPrimitives.ReadUInt16BigEndian(greeting.AsSpan(16));
    }

    public Task SendOptionAsync(uint option, byte[] data, ulong magic = Wire.IHaveOpt)
    {
        byte[] message = new byte[16 + data.Length];
        BinaryPrimitives.WriteUInt64BigEndian(message, magic);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(12), (uint)data.Length);
        data.CopyTo(message, 16);
        return SendAsync(message);
    }

    public async Task<OptionReply> ReadOptionReplyAsync()
    {
        byte[] header = await ReadExactlyAsync(20);
        Assert.Equal(Wire.OptionReplyMagic, BinaryPrimitives.ReadUInt64BigEndian(header));
        uint option = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8));
        uint type = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
        uint length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16));
        return new OptionReply(option, type, await ReadExactlyAsync((int)length));
    }

    /// <summary>Reads option replies up to and including the final one (ACK or an error).</summary>
    public async Task<List<OptionReply>> ReadOptionRepliesAsync()
    {
        var replies = new List<OptionReply>();
        while (true)
        {
            OptionReply reply = await ReadOptionReplyAsync();
            replies.Add(reply);
            if (reply.Type is Wire.RepAck || (reply.Type & 0x80000000) != 0)
            {
                return replies;
            }
        }
    }

    public Task SendRequestAsync(ushort type, ulong offset, uint length, ulong cookie, ushort flags = 0, byte[]? payload = null,
        uint magic = Wire.RequestMagic)
    {
        byte[] message = new byte[28 + (payload?.Length ?? 0)];
        BinaryPrimitives.WriteUInt32BigEndian(message, magic);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(6), type);
        BinaryPrimitives.WriteUInt64BigEndian(message.AsSpan(8), cookie);
        BinaryPrimitives.WriteUInt64BigEndian(message.AsSpan(16), offset);
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(24), length);
        payload?.CopyTo(message, 28);
        return SendAsync(message);
    }

    /// <summary>Reads one reply message: a simple reply (data read only when <paramref name="readLength"/> &gt; 0
    /// and the error is 0) or one structured chunk.</summary>
    public async Task<Reply> ReadReplyAsync(int readLength = 0)
    {
        byte[] magicBytes = await ReadExactlyAsync(4);
        uint magic = BinaryPrimitives.ReadUInt32BigEndian(magicBytes);
        if (magic == Wire.SimpleReplyMagic)
        {
            byte[] rest = await ReadExactlyAsync(12);
            uint error = BinaryPrimitives.ReadUInt32BigEndian(rest);
            ulong cookie = BinaryPrimitives.ReadUInt64BigEndian(rest.AsSpan(4));
            byte[] data = error == 0 && readLength > 0 ? await ReadExactlyAsync(readLength) : [];
            return new Reply(false, cookie, error, 0, 0, data);
        }

        Assert.Equal(Wire.StructuredReplyMagic, magic);
        byte[] header = await ReadExactlyAsync(16);
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(header);
        ushort chunkType = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(2));
        ulong chunkCookie = BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(4));
        uint length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
        byte[] payload = await ReadExactlyAsync((int)length);
        uint chunkError = (chunkType & 0x8000) != 0 ? BinaryPrimitives.ReadUInt32BigEndian(payload) : 0;
        return new Reply(true, chunkCookie, chunkError, flags, chunkType, payload);
    }

    /// <summary>Reads the chunks of one structured reply up to its DONE chunk.</summary>
    public async Task<List<Reply>> ReadChunksAsync()
    {
        var chunks = new List<Reply>();
        while (true)
        {
            Reply chunk = await ReadReplyAsync();
            Assert.True(chunk.Structured, "expected a structured reply");
            chunks.Add(chunk);
            if ((chunk.Flags & Wire.ReplyFlagDone) != 0)
            {
                return chunks;
            }
        }
    }

    /// <summary>A structured READ's chunks assembled into the bytes they describe (holes as zeroes).</summary>
    public static byte[] Assemble(List<Reply> chunks, ulong offset, int length)
    {
        byte[] result = new byte[length];
        long covered = 0;
        foreach (Reply c in chunks)
        {
            Assert.Equal(0u, c.Error);
            ulong at = c.Type is Wire.ChunkOffsetData or Wire.ChunkOffsetHole ? BinaryPrimitives.ReadUInt64BigEndian(c.Data) : 0;
            if (c.Type == Wire.ChunkOffsetData)
            {
                c.Data.AsSpan(8).CopyTo(result.AsSpan((int)(at - offset)));
                covered += c.Data.Length - 8;
            }
            else if (c.Type == Wire.ChunkOffsetHole)
            {
                uint hole = BinaryPrimitives.ReadUInt32BigEndian(c.Data.AsSpan(8));
                Assert.Equal(12, c.Data.Length);
                result.AsSpan((int)(at - offset), (int)hole).Clear();
                covered += hole;
            }
            else
            {
                Assert.Equal(Wire.ChunkNone, c.Type);
            }
        }

        Assert.Equal(length, covered);
        return result;
    }

    public async Task SendAsync(byte[] data)
    {
        using var cts = new CancellationTokenSource(Timeout);
        await _socket.SendAsync(data, SocketFlags.None, cts.Token);
    }

    public async Task<byte[]> ReadExactlyAsync(int count)
    {
        byte[] buffer = new byte[count];
        int done = 0;
        using var cts = new CancellationTokenSource(Timeout);
        while (done < count)
        {
            int n = await _socket.ReceiveAsync(buffer.AsMemory(done), SocketFlags.None, cts.Token);
            if (n == 0)
            {
                throw new EndOfStreamException($"The server closed the connection after {done} of {count} bytes.");
            }

            done += n;
        }

        return buffer;
    }

    /// <summary>True when the server closes the connection (EOF or reset) within the timeout, discarding anything
    /// it sends first.</summary>
    public async Task<bool> IsClosedByServerAsync()
    {
        byte[] buffer = new byte[4096];
        using var cts = new CancellationTokenSource(Timeout);
        try
        {
            while (await _socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) > 0)
            {
            }

            return true;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose() => _socket.Dispose();

    public static byte[] U32(uint value)
    {
        byte[] bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return bytes;
    }

    /// <summary>NBD_OPT_INFO/GO data: u32 name length, name, u16 count, u16 info types.</summary>
    public static byte[] GoData(string export, params ushort[] infos)
    {
        byte[] name = Encoding.UTF8.GetBytes(export);
        byte[] data = new byte[4 + name.Length + 2 + (2 * infos.Length)];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)name.Length);
        name.CopyTo(data, 4);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(4 + name.Length), (ushort)infos.Length);
        for (int i = 0; i < infos.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(6 + name.Length + (2 * i)), infos[i]);
        }

        return data;
    }

    /// <summary>LIST/SET_META_CONTEXT data: u32 name length, name, u32 count, queries (u32 length + text).</summary>
    public static byte[] MetaContextData(string export, params string[] queries)
    {
        var data = new List<byte>();
        byte[] name = Encoding.UTF8.GetBytes(export);
        data.AddRange(U32((uint)name.Length));
        data.AddRange(name);
        data.AddRange(U32((uint)queries.Length));
        foreach (string query in queries)
        {
            byte[] q = Encoding.UTF8.GetBytes(query);
            data.AddRange(U32((uint)q.Length));
            data.AddRange(q);
        }

        return [.. data];
    }
}

public sealed record OptionReply(uint Option, uint Type, byte[] Data)
{
    public string Text => Encoding.UTF8.GetString(Data);
}

public sealed record Reply(bool Structured, ulong Cookie, uint Error, ushort Flags, ushort Type, byte[] Data);
