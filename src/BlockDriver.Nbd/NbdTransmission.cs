using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Text;
using BlockDriver.Abstractions;
using Microsoft.Extensions.Logging;

namespace BlockDriver.Nbd;

/// <summary>The transmission phase of one connection (proto.md "Transmission"). One loop reads request headers and
/// write payloads; every request then runs on its own, so replies leave in completion order, not arrival order.
/// Memory is bounded: at most <see cref="NbdServerOptions.MaxRequestsPerConnection"/> requests are in flight, and
/// every data buffer (write payload, read reply) is taken from the connection's <see cref="ConnectionBudget"/> (its
/// reserve, then the server's shared pool) before it is allocated. A reply the client does not take off the socket
/// within <see cref="NbdServerOptions.SendTimeout"/>, and a connection idle for
/// <see cref="NbdServerOptions.IdleTimeout"/>, are found by the server's watchdog (<see cref="CheckTimeouts"/>), which
/// closes the connection. Small reads and writes run on the read loop until their first
/// real wait (<see cref="NbdLimits.InlineLimit"/>); a reply is flushed unless another is already waiting to be
/// written, so a burst of replies leaves in few sends. A request the server refuses gets an error reply; only a broken
/// frame (bad magic, a write payload larger than the maximum) closes the connection.</summary>
internal sealed class NbdTransmission : IDisposable
{
    // Zero bytes written by WRITE_ZEROES with NO_HOLE (never modified).
    private static readonly byte[] Zeroes = new byte[1024 * 1024];

    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private readonly Stream _stream;
    private readonly NbdSession _session;
    private readonly IBlockDevice _device;
    private readonly ConnectionBudget _budget;
    private readonly SemaphoreSlim _slots;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _broken = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ILogger _logger;
    private readonly string _peer;
    private readonly int _minBlock;
    private readonly bool _readOnly;

    // 1 once a write of this connection failed for want of space on the store's file system (warned once).
    private int _outOfSpaceLogged;

    // Requests running plus one for the read loop; the connection is drained when it reaches 0.
    private int _pending = 1;

    // Replies waiting for the send lock. The holder leaves its reply unflushed while this is positive: the next
    // holder flushes it with its own (NbdLimits.MaxUnflushedReplyBytes bounds what waits).
    private int _sendersWaiting;

    // Environment.TickCount64 when the send in progress last made progress (a flush, or a slice of reply data,
    // began), 0 while nothing is being sent. Read by the watchdog.
    private long _sendSince;

    // Environment.TickCount64 of the last request received or answered, and whether a write payload is being
    // received: the connection is idle when neither requests nor a payload are in flight since then.
    private long _lastActivity = Environment.TickCount64;
    private volatile bool _receivingPayload;

    /// <summary>Replies go through <paramref name="writer"/>; large reply data goes straight to
    /// <paramref name="stream"/> (the stream under <paramref name="writer"/>) once the writer is flushed.</summary>
    public NbdTransmission(PipeReader reader, PipeWriter writer, Stream stream, NbdSession session, NbdServerOptions options,
        ServerBudget serverBudget, ILogger logger, string peer)
    {
        _reader = reader;
        _writer = writer;
        _stream = stream;
        _session = session;
        _device = session.Device;
        _budget = new ConnectionBudget(serverBudget, options.MaxBufferedBytesPerConnection);
        _slots = new SemaphoreSlim(Math.Max(1, options.MaxRequestsPerConnection));
        _logger = logger;
        _peer = peer;
        _minBlock = session.Device.SectorSize;
        _readOnly = (session.Flags & NbdTransmissionFlags.ReadOnly) != 0;
    }

    /// <summary>Serves requests until the client disconnects, breaks the framing, or <paramref name="stop"/> fires;
    /// then waits for every request in flight to finish and be answered.</summary>
    public async Task RunAsync(CancellationToken stop)
    {
        using var loop = CancellationTokenSource.CreateLinkedTokenSource(stop, _broken.Token);
        CancellationToken ct = loop.Token;
        byte[] header = new byte[NbdRequest.Size];
        try
        {
            while (true)
            {
                await _slots.WaitAsync(ct).ConfigureAwait(false);
                bool dispatched = false;
                try
                {
                    if (!await _reader.ReadExactlyAsync(header, ct).ConfigureAwait(false))
                    {
                        Log.ClientClosed(_logger, _peer);
                        return;
                    }

                    uint magic = BinaryPrimitives.ReadUInt32BigEndian(header);
                    if (magic != NbdMagic.Request)
                    {
                        Log.ProtocolViolation(_logger, _peer, $"request with bad magic 0x{magic:x8}");
                        return;
                    }

                    var request = new NbdRequest(
                        BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(4)),
                        BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(6)),
                        BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8)),
                        BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(16)),
                        BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(24)));
                    Volatile.Write(ref _lastActivity, Environment.TickCount64);
                    Log.Request(_logger, _peer, request.Type, request.Flags, request.Offset, request.Length);
                    if (request.Type == NbdCommand.Disconnect)
                    {
                        Log.ClientDisconnected(_logger, _peer);
                        return;
                    }

                    byte[]? payload = null;
                    BudgetSource payloadSource = default;
                    if (request.Type == NbdCommand.Write)
                    {
                        // The payload follows the header whatever we think of the request; one we will not read
                        // leaves no way to find the next header.
                        if (request.Length > NbdLimits.MaxPayload)
                        {
                            Log.ProtocolViolation(_logger, _peer, $"write payload of {request.Length} bytes (maximum {NbdLimits.MaxPayload})");
                            return;
                        }

                        (payload, payloadSource) = await ReceivePayloadAsync((int)request.Length, ct).ConfigureAwait(false);
                        if (payload is null)
                        {
                            Log.ClientClosed(_logger, _peer);
                            return;
                        }
                    }

                    // Small reads and writes run here until their first real wait; with a device answering from
                    // the page cache that is the whole request, reply included, and saves two thread-pool hops.
                    // Anything that may block (fsync for FUA or FLUSH, large copies) leaves the loop at once.
                    bool inline = request.Length <= NbdLimits.InlineLimit
                        && (request.Type is NbdCommand.Read or NbdCommand.Write)
                        && !request.Has(NbdCommandFlags.Fua);
                    Interlocked.Increment(ref _pending);
                    dispatched = true;
                    _ = ProcessAsync(request, payload, payloadSource, inline);
                }
                finally
                {
                    if (!dispatched)
                    {
                        _slots.Release();
                    }
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Server stopping, or a reply could not be sent (logged where it failed).
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            Log.ReceiveFailed(_logger, _peer, e);
        }
        finally
        {
            Complete();
            await _drained.Task.ConfigureAwait(false);
        }
    }

    /// <summary>Releases the connection's semaphores; call after <see cref="RunAsync"/> completed.</summary>
    public void Dispose()
    {
        _slots.Dispose();
        _sendLock.Dispose();

        // _broken stays undisposed: the watchdog may still call Break, and a token source without a timer holds
        // nothing that needs disposing.
    }

    /// <summary>Stops the connection: the read loop ends, replies not yet sent are dropped, and requests waiting for
    /// budget give up. The caller closes the socket, which fails a send in progress. Thread-safe, idempotent.</summary>
    public void Break() => _broken.Cancel();

    /// <summary>Called by the server's watchdog: true (logged here) when a send has made no progress for
    /// <paramref name="sendTimeoutMs"/> or the connection was idle for <paramref name="idleTimeoutMs"/> (0: never);
    /// the caller then closes the connection.</summary>
    public bool CheckTimeouts(long now, long sendTimeoutMs, long idleTimeoutMs)
    {
        long since = Volatile.Read(ref _sendSince);
        if (sendTimeoutMs > 0 && since != 0 && now - since >= sendTimeoutMs)
        {
            Log.SendTimedOut(_logger, _peer, (now - since) / 1000.0, _budget.InUse);
            return true;
        }

        long idle = now - Volatile.Read(ref _lastActivity);
        if (idleTimeoutMs > 0 && idle >= idleTimeoutMs && Volatile.Read(ref _pending) == 1 && !_receivingPayload)
        {
            Log.IdleTimedOut(_logger, _peer, idle / 1000.0);
            return true;
        }

        return false;
    }

    // Takes budget for a write payload and reads it; null (budget returned) when the client closed mid-payload.
    private async Task<(byte[]? Payload, BudgetSource Source)> ReceivePayloadAsync(int length, CancellationToken ct)
    {
        BudgetSource source = await _budget.AcquireAsync(length, ct).ConfigureAwait(false);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        bool ok = false;
        _receivingPayload = true;
        try
        {
            ok = await _reader.ReadExactlyAsync(_stream, buffer.AsMemory(0, length), ct).ConfigureAwait(false);
            return (ok ? buffer : null, source);
        }
        finally
        {
            _receivingPayload = false;
            if (!ok)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                _budget.Release(length, source);
            }
        }
    }

    private void Complete()
    {
        Volatile.Write(ref _lastActivity, Environment.TickCount64);
        if (Interlocked.Decrement(ref _pending) == 0)
        {
            _drained.TrySetResult();
        }
    }

    private async Task ProcessAsync(NbdRequest request, byte[]? payload, BudgetSource payloadSource, bool inline)
    {
        if (!inline)
        {
            // Leave the read loop's thread at once: the device call may complete synchronously and take long.
            await Task.Yield();
        }

        try
        {
            await ExecuteAsync(request, payload).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            NbdErrno errno = NbdError.ToErrno(e);
            if (errno == NbdErrno.NoSpace && e is not NbdRequestException && Interlocked.Exchange(ref _outOfSpaceLogged, 1) == 0)
            {
                // The store's file system is full: a warning once per connection (the client retries every write).
                Log.OutOfSpace(_logger, _peer, _session.Export.Name, e.Message);
            }
            else if (NbdError.IsExpected(e))
            {
                Log.RequestFailed(_logger, _peer, request.Type, request.Offset, request.Length, errno, e.Message);
            }
            else
            {
                Log.RequestFailedUnexpectedly(_logger, _peer, request.Type, request.Offset, request.Length, errno, e);
            }

            await SendErrorAsync(request, errno, e.Message).ConfigureAwait(false);
        }
        finally
        {
            if (payload is not null)
            {
                ArrayPool<byte>.Shared.Return(payload);
                _budget.Release(request.Length, payloadSource);
            }

            _slots.Release();
            Complete();
        }
    }

    private async Task ExecuteAsync(NbdRequest r, byte[]? payload)
    {
        switch (r.Type)
        {
            case NbdCommand.Read:
                CheckFlags(r, (ushort)(NbdCommandFlags.Fua | (_session.StructuredReplies ? NbdCommandFlags.DontFragment : 0)));
                CheckReadLength(r);
                CheckRange(r, write: false);
                await ReadAsync(r).ConfigureAwait(false);
                break;
            case NbdCommand.Write:
                CheckFlags(r, NbdCommandFlags.Fua);
                CheckWritable();
                CheckRange(r, write: true);
                await _device.WriteAsync((long)r.Offset, payload.AsMemory(0, (int)r.Length), r.Has(NbdCommandFlags.Fua)).ConfigureAwait(false);
                await SendSimpleAsync(r.Cookie, NbdErrno.None, default).ConfigureAwait(false);
                break;
            case NbdCommand.Flush:
                CheckFlags(r, NbdCommandFlags.Fua);
                if (r.Offset != 0 || r.Length != 0)
                {
                    throw new NbdRequestException(NbdErrno.Invalid, "NBD_CMD_FLUSH must have offset and length 0.");
                }

                await _device.FlushAsync().ConfigureAwait(false);
                await SendSimpleAsync(r.Cookie, NbdErrno.None, default).ConfigureAwait(false);
                break;
            case NbdCommand.Trim:
                CheckFlags(r, NbdCommandFlags.Fua);
                CheckWritable();
                CheckRange(r, write: false);
                await _device.TrimAsync((long)r.Offset, r.Length).ConfigureAwait(false);
                await FlushIfFuaAsync(r).ConfigureAwait(false);
                await SendSimpleAsync(r.Cookie, NbdErrno.None, default).ConfigureAwait(false);
                break;
            case NbdCommand.Cache:
                // A prefetch hint; the device has no cache worth warming, so it is the no-op the spec allows.
                CheckFlags(r, NbdCommandFlags.Fua);
                CheckRange(r, write: false);
                await SendSimpleAsync(r.Cookie, NbdErrno.None, default).ConfigureAwait(false);
                break;
            case NbdCommand.WriteZeroes:
                CheckFlags(r, NbdCommandFlags.Fua | NbdCommandFlags.NoHole | NbdCommandFlags.FastZero);
                CheckWritable();
                CheckRange(r, write: true);
                await WriteZeroesAsync(r).ConfigureAwait(false);
                await SendSimpleAsync(r.Cookie, NbdErrno.None, default).ConfigureAwait(false);
                break;
            case NbdCommand.BlockStatus:
                CheckFlags(r, NbdCommandFlags.Fua | NbdCommandFlags.ReqOne);
                await BlockStatusAsync(r).ConfigureAwait(false);
                break;
            default:
                throw new NbdRequestException(NbdErrno.Invalid, $"Unknown command {r.Type}.");
        }
    }

    // A read answers with its data, so it may not exceed the advertised maximum payload; with DF the spec's
    // answer is EOVERFLOW (proto.md "NBD_CMD_FLAG_DF").
    private static void CheckReadLength(NbdRequest r)
    {
        if (r.Length > NbdLimits.MaxPayload)
        {
            throw new NbdRequestException(r.Has(NbdCommandFlags.DontFragment) ? NbdErrno.Overflow : NbdErrno.Invalid,
                $"Read of {r.Length} bytes exceeds the maximum payload of {NbdLimits.MaxPayload}.");
        }
    }

    private static void CheckFlags(NbdRequest r, ushort allowed)
    {
        if ((r.Flags & ~allowed) != 0)
        {
            throw new NbdRequestException(NbdErrno.Invalid, $"Flags 0x{r.Flags:x4} are not valid for command {r.Type}.");
        }
    }

    private void CheckWritable()
    {
        if (_readOnly)
        {
            throw new NbdRequestException(NbdErrno.Perm, $"Export '{_session.Export.Name}' is read-only.");
        }
    }

    // proto.md: offsets and lengths are multiples of the advertised minimum block; a range past the end is
    // EINVAL, except for writes (ENOSPC).
    private void CheckRange(NbdRequest r, bool write)
    {
        if (r.Length == 0)
        {
            throw new NbdRequestException(NbdErrno.Invalid, "Zero-length request.");
        }

        if (r.Offset > (ulong)_device.Length || r.Length > (ulong)_device.Length - r.Offset)
        {
            throw new NbdRequestException(write ? NbdErrno.NoSpace : NbdErrno.Invalid,
                $"Range [{r.Offset}, +{r.Length}) lies outside the export of {_device.Length} bytes.");
        }

        if (((r.Offset | r.Length) & (ulong)(_minBlock - 1)) != 0)
        {
            throw new NbdRequestException(NbdErrno.Invalid,
                $"Range [{r.Offset}, +{r.Length}) is not aligned to the export's {_minBlock}-byte minimum block.");
        }
    }

    private async Task FlushIfFuaAsync(NbdRequest r)
    {
        if (r.Has(NbdCommandFlags.Fua))
        {
            await _device.FlushAsync().ConfigureAwait(false);
        }
    }

    private async Task WriteZeroesAsync(NbdRequest r)
    {
        if (r.Has(NbdCommandFlags.NoHole))
        {
            // NO_HOLE asks for allocated storage, so zero bytes are really written: not faster than a WRITE.
            if (r.Has(NbdCommandFlags.FastZero))
            {
                throw new NbdRequestException(NbdErrno.NotSupported, "Write-zeroes with NO_HOLE writes zero bytes, which is not fast.");
            }

            for (long done = 0; done < r.Length; done += Zeroes.Length)
            {
                int count = (int)Math.Min(Zeroes.Length, r.Length - done);
                await _device.WriteAsync((long)r.Offset + done, Zeroes.AsMemory(0, count)).ConfigureAwait(false);
            }
        }
        else
        {
            // IBlockDevice.WriteZeroesAsync records zeroes without writing them where the format can (VHDX block
            // states, sparse memory): the fast path FAST_ZERO asks for.
            await _device.WriteZeroesAsync((long)r.Offset, r.Length).ConfigureAwait(false);
        }

        await FlushIfFuaAsync(r).ConfigureAwait(false);
    }

    private async Task ReadAsync(NbdRequest r)
    {
        bool dontFragment = r.Has(NbdCommandFlags.DontFragment);
        int length = (int)r.Length;
        long offset = (long)r.Offset;
        BudgetSource source = await _budget.AcquireAsync(length, _broken.Token).ConfigureAwait(false);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            if (!_session.StructuredReplies || dontFragment || length < NbdLimits.SparseReadThreshold)
            {
                await _device.ReadAsync(offset, buffer.AsMemory(0, length)).ConfigureAwait(false);
                if (_session.StructuredReplies)
                {
                    await SendChunksAsync(r.Cookie, [new ReadChunk(offset, buffer.AsMemory(0, length), 0)]).ConfigureAwait(false);
                }
                else
                {
                    await SendSimpleAsync(r.Cookie, NbdErrno.None, buffer.AsMemory(0, length)).ConfigureAwait(false);
                }

                return;
            }

            List<ReadChunk> chunks = await ReadSparseAsync(offset, buffer.AsMemory(0, length)).ConfigureAwait(false);
            await SendChunksAsync(r.Cookie, chunks).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            _budget.Release(length, source);
        }
    }

    // Maps the range and reads only what holds data; ranges reading as zeroes of at least SparseReadThreshold
    // bytes become hole chunks, shorter ones are read with their neighbours (fewer chunks, and reading a
    // zero range of a VHDX costs no I/O anyway).
    private async Task<List<ReadChunk>> ReadSparseAsync(long offset, Memory<byte> buffer)
    {
        var runs = new List<ReadChunk>();
        await foreach (Extent e in _device.MapAsync(offset, buffer.Length).ConfigureAwait(false))
        {
            bool hole = e.Kind != ExtentKind.Data && e.Length >= NbdLimits.SparseReadThreshold;
            long holeLength = hole ? e.Length : 0;
            if (runs.Count > 0 && (runs[^1].HoleLength == 0) == !hole)
            {
                ReadChunk last = runs[^1];
                runs[^1] = hole
                    ? last with { HoleLength = last.HoleLength + e.Length }
                    : last with { Data = buffer.Slice((int)(last.Offset - offset), last.Data.Length + (int)e.Length) };
            }
            else
            {
                runs.Add(hole
                    ? new ReadChunk(e.Offset, Memory<byte>.Empty, holeLength)
                    : new ReadChunk(e.Offset, buffer.Slice((int)(e.Offset - offset), (int)e.Length), 0));
            }
        }

        foreach (ReadChunk run in runs)
        {
            if (run.HoleLength == 0)
            {
                await _device.ReadAsync(run.Offset, run.Data).ConfigureAwait(false);
            }
        }

        return runs;
    }

    private async Task BlockStatusAsync(NbdRequest r)
    {
        if (_session.AllocationContextId == 0)
        {
            throw new NbdRequestException(NbdErrno.Invalid, "NBD_CMD_BLOCK_STATUS needs a meta context selected with NBD_OPT_SET_META_CONTEXT.");
        }

        if (r.Length == 0 || r.Offset >= (ulong)_device.Length || (r.Offset & (ulong)(_minBlock - 1)) != 0)
        {
            throw new NbdRequestException(NbdErrno.Invalid,
                $"Block status range [{r.Offset}, +{r.Length}) is empty, misaligned or outside the export of {_device.Length} bytes.");
        }

        // The length is a hint (proto.md): round it up to whole blocks, cap it at the end of the export and at
        // MaxBlockStatusLength, and describe that.
        long offset = (long)r.Offset;
        long wanted = ((long)r.Length + _minBlock - 1) / _minBlock * _minBlock;
        long length = Math.Min(Math.Min(wanted, _device.Length - offset), NbdLimits.MaxBlockStatusLength);
        bool one = r.Has(NbdCommandFlags.ReqOne);
        var descriptors = new List<(uint Length, uint Flags)>();
        await foreach (Extent e in _device.MapAsync(offset, length).ConfigureAwait(false))
        {
            uint flags = e.Kind switch
            {
                ExtentKind.Data => 0,
                ExtentKind.Zero => 2, // NBD_STATE_ZERO
                _ => 3, // NBD_STATE_HOLE | NBD_STATE_ZERO
            };
            if (descriptors.Count > 0 && descriptors[^1].Flags == flags)
            {
                descriptors[^1] = (descriptors[^1].Length + (uint)e.Length, flags);
            }
            else if (descriptors.Count >= NbdLimits.MaxExtentsPerReply || (one && descriptors.Count == 1))
            {
                break;
            }
            else
            {
                descriptors.Add(((uint)e.Length, flags));
            }
        }

        if (one && descriptors[0].Length > r.Length)
        {
            // REQ_ONE: exactly one extent, no longer than the request.
            descriptors[0] = (r.Length, descriptors[0].Flags);
        }

        byte[] payload = new byte[4 + (8 * descriptors.Count)];
        BinaryPrimitives.WriteUInt32BigEndian(payload, _session.AllocationContextId);
        for (int i = 0; i < descriptors.Count; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(4 + (8 * i)), descriptors[i].Length);
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(8 + (8 * i)), descriptors[i].Flags);
        }

        await SendLockedAsync(() => WriteChunkHeader(NbdChunkType.FlagDone, NbdChunkType.BlockStatus, r.Cookie, payload), payload).ConfigureAwait(false);
    }

    private async Task SendErrorAsync(NbdRequest r, NbdErrno errno, string message)
    {
        if (!_session.StructuredReplies)
        {
            await SendSimpleAsync(r.Cookie, errno, default).ConfigureAwait(false);
            return;
        }

        // NBD_REPLY_TYPE_ERROR: u32 error, u16 message length, message (kept short: u16 and a line of text).
        byte[] text = Encoding.UTF8.GetBytes(message.Length > 1024 ? message[..1024] : message);
        byte[] payload = new byte[6 + text.Length];
        BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)errno);
        BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(4), (ushort)text.Length);
        text.CopyTo(payload, 6);
        await SendLockedAsync(() => WriteChunkHeader(NbdChunkType.FlagDone, NbdChunkType.Error, r.Cookie, payload), payload).ConfigureAwait(false);
    }

    private Task SendSimpleAsync(ulong cookie, NbdErrno errno, ReadOnlyMemory<byte> data) =>
        SendLockedAsync(() =>
        {
            Span<byte> header = _writer.GetSpan(16);
            BinaryPrimitives.WriteUInt32BigEndian(header, NbdMagic.SimpleReply);
            BinaryPrimitives.WriteUInt32BigEndian(header[4..], (uint)errno);
            BinaryPrimitives.WriteUInt64BigEndian(header[8..], cookie);
            _writer.Advance(16);
        }, data);

    // Content chunks of a READ: OFFSET_DATA (u64 offset + data) or OFFSET_HOLE (u64 offset + u32 length); the
    // last one carries NBD_REPLY_FLAG_DONE. All go out under one hold of the send lock.
    private async Task SendChunksAsync(ulong cookie, List<ReadChunk> chunks)
    {
        if (!await EnterSendAsync().ConfigureAwait(false))
        {
            return;
        }

        try
        {
            for (int i = 0; i < chunks.Count; i++)
            {
                ReadChunk c = chunks[i];
                ushort flags = i == chunks.Count - 1 ? NbdChunkType.FlagDone : (ushort)0;
                Span<byte> header = _writer.GetSpan(32);
                if (c.HoleLength > 0)
                {
                    WriteChunkHeader(header, flags, NbdChunkType.OffsetHole, cookie, 12);
                    BinaryPrimitives.WriteUInt64BigEndian(header[20..], (ulong)c.Offset);
                    BinaryPrimitives.WriteUInt32BigEndian(header[28..], (uint)c.HoleLength);
                    _writer.Advance(32);
                }
                else
                {
                    WriteChunkHeader(header, flags, NbdChunkType.OffsetData, cookie, 8 + c.Data.Length);
                    BinaryPrimitives.WriteUInt64BigEndian(header[20..], (ulong)c.Offset);
                    _writer.Advance(28);
                    await WriteDataAsync(c.Data).ConfigureAwait(false);
                }
            }

            await FlushUnlessOthersWaitAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (IsSendFailure(e))
        {
            SendFailed(e);
        }
        finally
        {
            LeaveSend();
        }
    }

    private void WriteChunkHeader(ushort flags, ushort type, ulong cookie, byte[] payload)
    {
        WriteChunkHeader(_writer.GetSpan(20), flags, type, cookie, payload.Length);
        _writer.Advance(20);
    }

    private static void WriteChunkHeader(Span<byte> header, ushort flags, ushort type, ulong cookie, int payloadLength)
    {
        BinaryPrimitives.WriteUInt32BigEndian(header, NbdMagic.StructuredReply);
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(header[6..], type);
        BinaryPrimitives.WriteUInt64BigEndian(header[8..], cookie);
        BinaryPrimitives.WriteUInt32BigEndian(header[16..], (uint)payloadLength);
    }

    // Writes one reply (header written by writeHeader, then data) and flushes, under the send lock so that
    // replies never interleave. A failed send marks the connection broken: the read loop stops, and the
    // requests still running finish without anyone to answer.
    private async Task SendLockedAsync(Action writeHeader, ReadOnlyMemory<byte> data)
    {
        if (!await EnterSendAsync().ConfigureAwait(false))
        {
            return;
        }

        try
        {
            writeHeader();
            await WriteDataAsync(data).ConfigureAwait(false);
            await FlushUnlessOthersWaitAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (IsSendFailure(e))
        {
            SendFailed(e);
        }
        finally
        {
            LeaveSend();
        }
    }

    // Under the send lock: small data is copied into the pipe after its header; large data follows the flushed
    // header straight onto the stream (one send instead of a copy and one send per 64 KiB pipe segment).
    // Sent in slices of NbdLimits.SendSlice, each restarting the send timeout: a slow client that keeps reading is
    // not cut off in the middle of a 32 MiB reply, a client that stops reading is.
    private async ValueTask WriteDataAsync(ReadOnlyMemory<byte> data)
    {
        if (data.Length < NbdLimits.DirectSendThreshold)
        {
            _writer.Write(data.Span);
            return;
        }

        await FlushAsync().ConfigureAwait(false);
        while (!data.IsEmpty)
        {
            int slice = Math.Min(data.Length, NbdLimits.SendSlice);
            Volatile.Write(ref _sendSince, Environment.TickCount64);
            await _stream.WriteAsync(data[..slice]).ConfigureAwait(false);
            data = data[slice..];
        }
    }

    private ValueTask<FlushResult> FlushAsync()
    {
        Volatile.Write(ref _sendSince, Environment.TickCount64);
        return _writer.FlushAsync();
    }

    // Under the send lock: a reply waiting for the lock will flush this one with its own, so a burst of replies
    // leaves in one send. The last reply of a burst finds no waiter and flushes; every waiter has already
    // finished its request, so no reply waits on a request still running.
    private ValueTask<FlushResult> FlushUnlessOthersWaitAsync() =>
        Volatile.Read(ref _sendersWaiting) > 0 && _writer.UnflushedBytes < NbdLimits.MaxUnflushedReplyBytes
            ? ValueTask.FromResult(default(FlushResult))
            : FlushAsync();

    private async Task<bool> EnterSendAsync()
    {
        Interlocked.Increment(ref _sendersWaiting);
        try
        {
            await _sendLock.WaitAsync().ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _sendersWaiting);
        }

        if (_broken.IsCancellationRequested)
        {
            _sendLock.Release();
            return false;
        }

        return true;
    }

    private void LeaveSend()
    {
        Volatile.Write(ref _sendSince, 0);
        _sendLock.Release();
    }

    private static bool IsSendFailure(Exception e) =>
        e is IOException or SocketException or ObjectDisposedException or InvalidOperationException;

    private void SendFailed(Exception e)
    {
        Log.SendFailed(_logger, _peer, e);
        _broken.Cancel();
    }

    /// <summary>One content chunk of a structured READ reply: data, or a hole of <paramref name="HoleLength"/>.</summary>
    private readonly record struct ReadChunk(long Offset, Memory<byte> Data, long HoleLength);
}
