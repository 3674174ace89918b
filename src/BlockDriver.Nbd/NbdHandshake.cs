using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Text;
using BlockDriver.Abstractions;
using Microsoft.Extensions.Logging;

namespace BlockDriver.Nbd;

/// <summary>The fixed-newstyle handshake of one connection (proto.md "Fixed newstyle negotiation"): greeting,
/// client flags, then options until NBD_OPT_GO or NBD_OPT_EXPORT_NAME selects an export. Unknown or malformed
/// options get an error reply and negotiation goes on; only framing violations (bad magic, unknown client flags,
/// an unknown export in EXPORT_NAME, absurd lengths) close the connection.</summary>
internal sealed class NbdHandshake
{
    // Handshake flags of the greeting: FIXED_NEWSTYLE (bit 0) | NO_ZEROES (bit 1).
    private const ushort ServerHandshakeFlags = 0x0003;
    private const uint ClientFixedNewstyle = 0x1;
    private const uint ClientNoZeroes = 0x2;

    // base:allocation is the one meta context; its id in SET_META_CONTEXT replies (any nonzero value would do).
    public const uint AllocationContextId = 1;
    public const string AllocationContext = "base:allocation";

    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly NbdServer _server;
    private readonly ILogger _logger;
    private readonly string _peer;

    private bool _noZeroes;
    private bool _structured;

    // The export named by the last SET_META_CONTEXT that selected base:allocation (null: none selected).
    private string? _metaContextExport;

    public NbdHandshake(PipeReader reader, PipeWriter writer, NbdServer server, ILogger logger, string peer)
    {
        _reader = reader;
        _writer = writer;
        _server = server;
        _logger = logger;
        _peer = peer;
    }

    /// <summary>Runs the handshake; null when the connection must close (the reason is logged).</summary>
    public async Task<NbdSession?> RunAsync(CancellationToken ct)
    {
        Span<byte> greeting = _writer.GetSpan(18);
        BinaryPrimitives.WriteUInt64BigEndian(greeting, NbdMagic.Greeting);
        BinaryPrimitives.WriteUInt64BigEndian(greeting[8..], NbdMagic.Option);
        BinaryPrimitives.WriteUInt16BigEndian(greeting[16..], ServerHandshakeFlags);
        _writer.Advance(18);
        await _writer.FlushAsync(ct).ConfigureAwait(false);

        byte[] header = new byte[16];
        if (!await _reader.ReadExactlyAsync(header.AsMemory(0, 4), ct).ConfigureAwait(false))
        {
            return Close("closed before sending its flags");
        }

        uint clientFlags = BinaryPrimitives.ReadUInt32BigEndian(header);
        if ((clientFlags & ~(ClientFixedNewstyle | ClientNoZeroes)) != 0)
        {
            return Close($"sent unknown client flags 0x{clientFlags:x8}");
        }

        _noZeroes = (clientFlags & ClientNoZeroes) != 0;
        while (true)
        {
            if (!await _reader.ReadExactlyAsync(header, ct).ConfigureAwait(false))
            {
                return Close("closed during option negotiation");
            }

            ulong magic = BinaryPrimitives.ReadUInt64BigEndian(header);
            uint option = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8));
            uint length = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
            if (magic != NbdMagic.Option)
            {
                return Close($"sent an option with bad magic 0x{magic:x16}");
            }

            if (length > NbdLimits.MaxOptionLength)
            {
                if (length > NbdLimits.MaxSkippedOptionLength || !await _reader.SkipAsync(length, ct).ConfigureAwait(false))
                {
                    return Close($"sent option {option} with {length} bytes of data");
                }

                await ReplyErrorAsync(option, NbdOptionReply.ErrTooBig, $"Option data of {length} bytes is too large.", ct).ConfigureAwait(false);
                continue;
            }

            byte[] data = new byte[length];
            if (!await _reader.ReadExactlyAsync(data, ct).ConfigureAwait(false))
            {
                return Close("closed in the middle of an option");
            }

            Log.Option(_logger, _peer, option, length);
            if (_server.IsStopping && option != NbdOption.Abort)
            {
                await ReplyErrorAsync(option, NbdOptionReply.ErrShutdown, "The server is shutting down.", ct).ConfigureAwait(false);
                continue;
            }

            switch (option)
            {
                case NbdOption.ExportName:
                    return await ExportNameAsync(data, ct).ConfigureAwait(false);
                case NbdOption.Abort:
                    // The client may close without waiting for the ACK; a failed send is not worth a log line.
                    await TryReplyAsync(option, NbdOptionReply.Ack, ct).ConfigureAwait(false);
                    return Close("aborted the negotiation");
                case NbdOption.List:
                    await ListAsync(data, ct).ConfigureAwait(false);
                    break;
                case NbdOption.Info:
                case NbdOption.Go:
                    if (await InfoOrGoAsync(option, data, ct).ConfigureAwait(false) is { } session)
                    {
                        return session;
                    }

                    break;
                case NbdOption.StructuredReply:
                    await StructuredReplyAsync(data, ct).ConfigureAwait(false);
                    break;
                case NbdOption.ListMetaContext:
                case NbdOption.SetMetaContext:
                    await MetaContextAsync(option, data, ct).ConfigureAwait(false);
                    break;
                case NbdOption.StartTls:
                    await ReplyErrorAsync(option, NbdOptionReply.ErrUnsupported, "TLS is not supported by this server.", ct).ConfigureAwait(false);
                    break;
                default:
                    // Includes NBD_OPT_EXTENDED_HEADERS (experimental) and the withdrawn PEEK_EXPORT.
                    await ReplyErrorAsync(option, NbdOptionReply.ErrUnsupported, $"Option {option} is not supported.", ct).ConfigureAwait(false);
                    break;
            }
        }
    }

    private NbdSession? Close(string reason)
    {
        Log.HandshakeEnded(_logger, _peer, reason);
        return null;
    }

    // NBD_OPT_EXPORT_NAME: the whole data is the name; success is the bare export block, failure a hard close.
    private async Task<NbdSession?> ExportNameAsync(byte[] data, CancellationToken ct)
    {
        string name = Encoding.UTF8.GetString(data);
        ExportHandle? export = _server.FindExport(name);
        if (export is null)
        {
            return Close($"asked for unknown export '{name}' with NBD_OPT_EXPORT_NAME");
        }

        IBlockDevice device;
        try
        {
            device = await export.GetDeviceAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is BlockDriverException or IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            Log.ExportOpenFailed(_logger, export.Name, e);
            return Close($"asked for export '{name}', which could not be opened");
        }

        NbdTransmissionFlags flags = export.FlagsFor(device, _structured);
        int size = _noZeroes ? 10 : 134;
        Span<byte> reply = _writer.GetSpan(size)[..size];
        reply.Clear();
        BinaryPrimitives.WriteUInt64BigEndian(reply, (ulong)device.Length);
        BinaryPrimitives.WriteUInt16BigEndian(reply[8..], (ushort)flags);
        _writer.Advance(size);
        await _writer.FlushAsync(ct).ConfigureAwait(false);
        return Session(export, device, flags);
    }

    private NbdSession Session(ExportHandle export, IBlockDevice device, NbdTransmissionFlags flags)
    {
        bool contexts = _structured && _metaContextExport is not null && NameMatches(_metaContextExport, export);
        Log.Negotiated(_logger, _peer, export.Name, _structured, contexts);
        return new NbdSession(export, device, flags, _structured, contexts ? AllocationContextId : 0);
    }

    private bool NameMatches(string name, ExportHandle export) => _server.FindExport(name) == export;

    private async Task ListAsync(byte[] data, CancellationToken ct)
    {
        if (data.Length != 0)
        {
            await ReplyErrorAsync(NbdOption.List, NbdOptionReply.ErrInvalid, "NBD_OPT_LIST takes no data.", ct).ConfigureAwait(false);
            return;
        }

        foreach (ExportHandle export in _server.Exports)
        {
            byte[] name = Encoding.UTF8.GetBytes(export.Name);
            byte[] description = Encoding.UTF8.GetBytes(export.Export.Description);
            byte[] payload = new byte[4 + name.Length + description.Length];
            BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)name.Length);
            name.CopyTo(payload, 4);
            description.CopyTo(payload, 4 + name.Length);
            WriteReply(NbdOption.List, NbdOptionReply.Server, payload);
        }

        WriteReply(NbdOption.List, NbdOptionReply.Ack, []);
        await _writer.FlushAsync(ct).ConfigureAwait(false);
    }

    // NBD_OPT_INFO / NBD_OPT_GO (proto.md "NBD_OPT_INFO and NBD_OPT_GO"): u32 name length, name, u16 count,
    // count × u16 info types. Returns the session for a successful GO, null otherwise.
    private async Task<NbdSession?> InfoOrGoAsync(uint option, byte[] data, CancellationToken ct)
    {
        var span = new ReadOnlySpan<byte>(data);
        if (span.Length < 6 || BinaryPrimitives.ReadUInt32BigEndian(span) is var nameLength && nameLength > span.Length - 6)
        {
            await ReplyErrorAsync(option, NbdOptionReply.ErrInvalid, "Malformed NBD_OPT_INFO/GO data.", ct).ConfigureAwait(false);
            return null;
        }

        string name = Encoding.UTF8.GetString(span.Slice(4, (int)nameLength));
        ReadOnlySpan<byte> rest = span[(4 + (int)nameLength)..];
        int count = BinaryPrimitives.ReadUInt16BigEndian(rest);
        if (rest.Length != 2 + (2 * count))
        {
            await ReplyErrorAsync(option, NbdOptionReply.ErrInvalid, "Malformed NBD_OPT_INFO/GO information request list.", ct).ConfigureAwait(false);
            return null;
        }

        var requested = new HashSet<ushort>();
        for (int i = 0; i < count; i++)
        {
            requested.Add(BinaryPrimitives.ReadUInt16BigEndian(rest[(2 + (2 * i))..]));
        }

        ExportHandle? export = _server.FindExport(name);
        if (export is null)
        {
            await ReplyErrorAsync(option, NbdOptionReply.ErrUnknown, $"No export named '{name}'.", ct).ConfigureAwait(false);
            return null;
        }

        IBlockDevice device;
        try
        {
            device = await export.GetDeviceAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is BlockDriverException or IOException or UnauthorizedAccessException or ObjectDisposedException)
        {
            Log.ExportOpenFailed(_logger, export.Name, e);
            await ReplyErrorAsync(option, NbdOptionReply.ErrUnknown, $"Export '{name}' could not be opened: {e.Message}", ct).ConfigureAwait(false);
            return null;
        }

        NbdTransmissionFlags flags = export.FlagsFor(device, _structured);
        byte[] info = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(info, NbdInfoType.Export);
        BinaryPrimitives.WriteUInt64BigEndian(info.AsSpan(2), (ulong)device.Length);
        BinaryPrimitives.WriteUInt16BigEndian(info.AsSpan(10), (ushort)flags);
        WriteReply(option, NbdOptionReply.Info, info);

        // Block sizes are sent whether asked for or not (clients ignore what they did not ask for).
        byte[] sizes = new byte[14];
        BinaryPrimitives.WriteUInt16BigEndian(sizes, NbdInfoType.BlockSize);
        BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(2), (uint)device.SectorSize);
        BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(6), (uint)Math.Max(device.SectorSize, NbdLimits.PreferredBlock));
        BinaryPrimitives.WriteUInt32BigEndian(sizes.AsSpan(10), NbdLimits.MaxPayload);
        WriteReply(option, NbdOptionReply.Info, sizes);

        if (requested.Contains(NbdInfoType.Name))
        {
            WriteReply(option, NbdOptionReply.Info, InfoString(NbdInfoType.Name, export.Name));
        }

        if (requested.Contains(NbdInfoType.Description) && export.Export.Description.Length > 0)
        {
            WriteReply(option, NbdOptionReply.Info, InfoString(NbdInfoType.Description, export.Export.Description));
        }

        // A device with sectors larger than the 512 bytes clients assume by default cannot serve a client that
        // will not learn its block sizes (proto.md: NBD_REP_ERR_BLOCK_SIZE_REQD, after the BLOCK_SIZE info).
        if (device.SectorSize > 512 && !requested.Contains(NbdInfoType.BlockSize))
        {
            await ReplyErrorAsync(option, NbdOptionReply.ErrBlockSizeRequired,
                $"Export '{export.Name}' needs {device.SectorSize}-byte aligned requests: ask for NBD_INFO_BLOCK_SIZE.", ct).ConfigureAwait(false);
            return null;
        }

        WriteReply(option, NbdOptionReply.Ack, []);
        await _writer.FlushAsync(ct).ConfigureAwait(false);
        return option == NbdOption.Go ? Session(export, device, flags) : null;
    }

    private static byte[] InfoString(ushort type, string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        byte[] payload = new byte[2 + bytes.Length];
        BinaryPrimitives.WriteUInt16BigEndian(payload, type);
        bytes.CopyTo(payload, 2);
        return payload;
    }

    private async Task StructuredReplyAsync(byte[] data, CancellationToken ct)
    {
        if (data.Length != 0)
        {
            await ReplyErrorAsync(NbdOption.StructuredReply, NbdOptionReply.ErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data.", ct).ConfigureAwait(false);
        }
        else if (_structured)
        {
            await ReplyErrorAsync(NbdOption.StructuredReply, NbdOptionReply.ErrInvalid, "Structured replies are already negotiated.", ct).ConfigureAwait(false);
        }
        else
        {
            _structured = true;
            WriteReply(NbdOption.StructuredReply, NbdOptionReply.Ack, []);
            await _writer.FlushAsync(ct).ConfigureAwait(false);
        }
    }

    // LIST/SET_META_CONTEXT (proto.md "Metadata querying"): u32 name length, name, u32 query count, queries as
    // u32 length + string. Only base:allocation exists.
    private async Task MetaContextAsync(uint option, byte[] data, CancellationToken ct)
    {
        bool set = option == NbdOption.SetMetaContext;
        if (set)
        {
            // Each SET replaces the previous selection, also when it fails.
            _metaContextExport = null;
        }

        if (!_structured)
        {
            await ReplyErrorAsync(option, NbdOptionReply.ErrInvalid, "Meta contexts need structured replies first.", ct).ConfigureAwait(false);
            return;
        }

        if (!TryParseMetaContextRequest(data, out string name, out List<string> queries))
        {
            await ReplyErrorAsync(option, NbdOptionReply.ErrInvalid, "Malformed meta context request.", ct).ConfigureAwait(false);
            return;
        }

        if (_server.FindExport(name) is null)
        {
            await ReplyErrorAsync(option, NbdOptionReply.ErrUnknown, $"No export named '{name}'.", ct).ConfigureAwait(false);
            return;
        }

        // LIST: no query or "base:" lists base:allocation; SET: only the full name selects it.
        bool allocation = set
            ? queries.Contains(AllocationContext)
            : queries.Count == 0 || queries.Contains(AllocationContext) || queries.Contains("base:");
        if (allocation)
        {
            byte[] contextName = Encoding.UTF8.GetBytes(AllocationContext);
            byte[] payload = new byte[4 + contextName.Length];
            BinaryPrimitives.WriteUInt32BigEndian(payload, set ? AllocationContextId : 0);
            contextName.CopyTo(payload, 4);
            WriteReply(option, NbdOptionReply.MetaContext, payload);
            if (set)
            {
                _metaContextExport = name;
            }
        }

        WriteReply(option, NbdOptionReply.Ack, []);
        await _writer.FlushAsync(ct).ConfigureAwait(false);
    }

    private static bool TryParseMetaContextRequest(ReadOnlySpan<byte> data, out string name, out List<string> queries)
    {
        name = "";
        queries = [];
        if (!TryReadString(ref data, out name) || data.Length < 4)
        {
            return false;
        }

        uint count = BinaryPrimitives.ReadUInt32BigEndian(data);
        data = data[4..];

        // Every query takes at least its 4-byte length, which bounds the count by the data actually sent.
        if (count > data.Length / 4)
        {
            return false;
        }

        for (uint i = 0; i < count; i++)
        {
            if (!TryReadString(ref data, out string query))
            {
                return false;
            }

            queries.Add(query);
        }

        return data.IsEmpty;
    }

    private static bool TryReadString(ref ReadOnlySpan<byte> data, out string value)
    {
        value = "";
        if (data.Length < 4)
        {
            return false;
        }

        uint length = BinaryPrimitives.ReadUInt32BigEndian(data);
        if (length > NbdLimits.MaxStringLength || length > data.Length - 4)
        {
            return false;
        }

        value = Encoding.UTF8.GetString(data.Slice(4, (int)length));
        data = data[(4 + (int)length)..];
        return true;
    }

    private void WriteReply(uint option, uint type, ReadOnlySpan<byte> payload)
    {
        Span<byte> header = _writer.GetSpan(20);
        BinaryPrimitives.WriteUInt64BigEndian(header, NbdMagic.OptionReply);
        BinaryPrimitives.WriteUInt32BigEndian(header[8..], option);
        BinaryPrimitives.WriteUInt32BigEndian(header[12..], type);
        BinaryPrimitives.WriteUInt32BigEndian(header[16..], (uint)payload.Length);
        _writer.Advance(20);
        _writer.Write(payload);
    }

    private async Task ReplyErrorAsync(uint option, uint error, string message, CancellationToken ct)
    {
        Log.OptionRefused(_logger, _peer, option, error, message);
        WriteReply(option, error, Encoding.UTF8.GetBytes(message));
        await _writer.FlushAsync(ct).ConfigureAwait(false);
    }

    private async Task TryReplyAsync(uint option, uint type, CancellationToken ct)
    {
        WriteReply(option, type, []);
        try
        {
            await _writer.FlushAsync(ct).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            Log.SendFailed(_logger, _peer, e);
        }
    }
}
