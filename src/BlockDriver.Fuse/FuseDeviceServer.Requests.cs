using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using BlockDriver.Abstractions;
using BlockDriver.Interop;
using static BlockDriver.Fuse.FuseProtocol;

namespace BlockDriver.Fuse;

// Request handling: the reader loop, one method per opcode, replies. Struct offsets are those of
// include/uapi/linux/fuse.h (see shared/reference/fuse.md §5); every body starts after the 40-byte fuse_in_header.
public sealed partial class FuseDeviceServer
{
    private const int DirectoryPermissions = 0x1C0; // rwx------: the layer files are the daemon's (root's) alone
    private const uint StatFsBlockSize = 4096;

    // Requests up to this size are copied into a buffer of their own size; larger ones (big WRITEs) take the
    // reader's buffer. Copying 4 KiB costs less than cycling max_write-sized buffers through the pool.
    private const int HandOverThreshold = 64 * 1024;

    private unsafe void ReaderLoop(int fd, TaskCompletionSource exited)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(_bufferSize);
        try
        {
            while (true)
            {
                int length = ReadRequest(fd, buffer);
                if (length < 0)
                {
                    return;
                }

                uint opcode = length >= 8 ? BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(4)) : 0;
                if (length < InHeaderSize || BinaryPrimitives.ReadUInt32LittleEndian(buffer) != (uint)length)
                {
                    Log.Malformed(_logger, length, opcode);
                    continue;
                }

                switch (opcode)
                {
                    case Init:
                        HandleInit(new Request(fd, buffer, length));
                        continue;
                    case Forget or BatchForget:
                        // Node ids are never reused, so lookup counts need no bookkeeping; FORGET has no reply.
                        continue;
                    case Interrupt:
                        // Device requests are short and not cancellable mid-way: let the original finish normally.
                        continue;
                }

                // A large WRITE hands the whole buffer (with its payload) to the handler and this reader takes a
                // fresh one; anything else is small and is copied out, so the big buffers stay with the readers.
                byte[] owned;
                if (length > HandOverThreshold)
                {
                    owned = buffer;
                    buffer = ArrayPool<byte>.Shared.Rent(_bufferSize);
                }
                else
                {
                    owned = ArrayPool<byte>.Shared.Rent(length);
                    buffer.AsSpan(0, length).CopyTo(owned);
                }

                Interlocked.Increment(ref _inFlight);
                _ = HandleAsync(new Request(fd, owned, length));
            }
        }
        catch (Exception ex)
        {
            Log.ReaderFailed(_logger, ex.ToString());
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            exited.TrySetResult();
        }
    }

    // One request per read(2); -1 when the connection is gone (unmounted or aborted).
    private unsafe int ReadRequest(int fd, byte[] buffer)
    {
        while (true)
        {
            nint n;
            fixed (byte* p = buffer)
            {
                n = Libc.Read(fd, p, buffer.Length);
            }

            if (n > 0)
            {
                return (int)n;
            }

            int errno = n == 0 ? Errno.ENODEV : LastErrno();
            switch (errno)
            {
                case Errno.EINTR or Errno.EAGAIN:
                    continue;
                case Errno.ENOENT:
                    // The request was interrupted while being read (go-fuse retries too).
                    continue;
                case Errno.ENODEV or Errno.ECONNABORTED:
                    return -1;
                default:
                    Log.ReaderFailed(_logger, $"read(/dev/fuse) failed: {Errno.Describe(errno)}");
                    return -1;
            }
        }
    }

    private async Task HandleAsync(Request request)
    {
        try
        {
            await DispatchAsync(request).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            int errno = FuseErrno.From(ex);
            if (errno == Errno.EIO)
            {
                Log.RequestFailed(_logger, ex, request.Opcode, request.NodeId, errno);
            }
            else
            {
                Log.RequestRefused(_logger, request.Opcode, request.NodeId, errno, ex.Message);
            }

            SendError(request, errno);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(request.Buffer);
            if (Interlocked.Decrement(ref _inFlight) == 0)
            {
                _drained.TrySetResult();
            }
        }
    }

    private ValueTask DispatchAsync(Request request)
    {
        switch (request.Opcode)
        {
            case Read:
                return ReadAsync(request);
            case Write:
                return WriteAsync(request);
            case Fsync or Flush:
                return FlushAsync(request);
            case Fallocate:
                return FallocateAsync(request);
            case Lseek:
                return LseekAsync(request);
            case Lookup:
                HandleLookup(request);
                break;
            case GetAttr:
                HandleGetAttr(request);
                break;
            case SetAttr:
                HandleSetAttr(request);
                break;
            case Open:
                HandleOpen(request);
                break;
            case Release:
                HandleRelease(request);
                break;
            case OpenDir:
                HandleOpenDir(request);
                break;
            case ReadDir:
                HandleReadDir(request);
                break;
            case StatFs:
                HandleStatFs(request);
                break;
            case Access:
                SendError(request, TryGetNode(request.NodeId, out _) ? 0 : Errno.ENOENT);
                break;
            case ReleaseDir or Destroy:
                SendError(request, 0);
                break;
            case Mknod or Mkdir or Unlink or Rmdir or Rename or Rename2 or Link or Symlink or Create or TmpFile:
                // The directory's content is the set of devices the owner added; nobody else changes it.
                SendError(request, Errno.EPERM);
                break;
            default:
                SendError(request, Errno.ENOSYS);
                break;
        }

        return ValueTask.CompletedTask;
    }

    private void HandleInit(Request request)
    {
        ReadOnlySpan<byte> body = request.Body;
        if (body.Length < 16)
        {
            SendError(request, Errno.EPROTO);
            _initialized.TrySetException(new BlockDriverException(ErrorKind.Unavailable, "The kernel sent a malformed FUSE INIT."));
            return;
        }

        uint major = U32(body, 0);
        uint minor = U32(body, 4);
        uint maxReadahead = U32(body, 8);
        uint flags = U32(body, 12);
        Span<byte> reply = stackalloc byte[OutHeaderSize + InitOutSize];
        reply.Clear();
        Span<byte> output = reply[OutHeaderSize..];
        BinaryPrimitives.WriteUInt32LittleEndian(output, KernelMajor);
        BinaryPrimitives.WriteUInt32LittleEndian(output[4..], KernelMinor);
        if (major > KernelMajor)
        {
            // A newer major: answer with ours and wait for the kernel's second INIT.
            Send(request, reply);
            return;
        }

        if (major < KernelMajor || minor < 23)
        {
            SendError(request, Errno.EPROTO);
            _initialized.TrySetException(new BlockDriverException(ErrorKind.Unavailable,
                $"The kernel speaks FUSE {major}.{minor}; this server needs 7.23 or later."));
            return;
        }

        // ASYNC_READ and ASYNC_DIO let the kernel keep several reads and direct-I/O pieces in flight, BIG_WRITES
        // and MAX_PAGES allow requests beyond 4 KiB and 32 pages. No WRITEBACK_CACHE: the loop device above caches.
        uint granted = flags & (AsyncRead | BigWrites | AsyncDio | ParallelDirOps | MaxPages);
        uint negotiated = Math.Min(minor, KernelMinor);
        _maxWrite = (uint)_options.MaxWrite;
        ushort maxBackground = (ushort)_options.MaxBackground;
        BinaryPrimitives.WriteUInt32LittleEndian(output[4..], negotiated);
        BinaryPrimitives.WriteUInt32LittleEndian(output[8..], maxReadahead);
        BinaryPrimitives.WriteUInt32LittleEndian(output[12..], granted);
        BinaryPrimitives.WriteUInt16LittleEndian(output[16..], maxBackground);
        BinaryPrimitives.WriteUInt16LittleEndian(output[18..], (ushort)Math.Max(1, maxBackground * 3 / 4));
        BinaryPrimitives.WriteUInt32LittleEndian(output[20..], _maxWrite);
        BinaryPrimitives.WriteUInt32LittleEndian(output[24..], 1); // time_gran: nanoseconds
        BinaryPrimitives.WriteUInt16LittleEndian(output[28..], (ushort)(_maxWrite / 4096)); // max_pages
        _minor = negotiated;
        Send(request, reply);
        _initialized.TrySetResult();
    }

    private void HandleLookup(Request request)
    {
        if (request.NodeId != RootId)
        {
            SendError(request, TryGetNode(request.NodeId, out _) ? Errno.ENOTDIR : Errno.ENOENT);
            return;
        }

        ReadOnlySpan<byte> body = request.Body;
        int nul = body.IndexOf((byte)0);
        ReadOnlySpan<byte> nameBytes = nul < 0 ? body : body[..nul];
        if (nameBytes.Length > 255)
        {
            SendError(request, Errno.ENAMETOOLONG);
            return;
        }

        string name = Encoding.UTF8.GetString(nameBytes);
        FuseNode? node;
        lock (_lock)
        {
            _byName.TryGetValue(name, out node);
        }

        if (node is null)
        {
            SendError(request, Errno.ENOENT);
            return;
        }

        Span<byte> reply = stackalloc byte[OutHeaderSize + EntryOutSize];
        Span<byte> entry = reply[OutHeaderSize..];
        (ulong seconds, uint nanoseconds) = Timeout();
        BinaryPrimitives.WriteUInt64LittleEndian(entry, node.NodeId);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], 1); // generation: ids are never reused
        BinaryPrimitives.WriteUInt64LittleEndian(entry[16..], seconds);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[24..], seconds);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[32..], nanoseconds);
        BinaryPrimitives.WriteUInt32LittleEndian(entry[36..], nanoseconds);
        WriteAttr(entry.Slice(40, AttrSize), node);
        Send(request, reply);
    }

    private void HandleGetAttr(Request request)
    {
        if (!TryGetNode(request.NodeId, out FuseNode? node))
        {
            SendError(request, Errno.ENOENT);
            return;
        }

        SendAttr(request, node);
    }

    // fuse_setattr_in: valid @0, size @16, mode @68, uid @76, gid @80. The files have fixed sizes and owners; times
    // are accepted and not stored (they would mean nothing for a device).
    private void HandleSetAttr(Request request)
    {
        ReadOnlySpan<byte> body = request.Body;
        if (body.Length < 88 || !TryGetNode(request.NodeId, out FuseNode? node))
        {
            SendError(request, body.Length < 88 ? Errno.EINVAL : Errno.ENOENT);
            return;
        }

        uint valid = U32(body, 0);
        uint permissions = node?.Permissions ?? DirectoryPermissions;
        int errno = 0;
        if ((valid & FattrSize) != 0 && (node is null || (long)U64(body, 16) != node.Device.Length))
        {
            // Resizing would change the device under whatever sits on top of it.
            errno = node is null ? Errno.EISDIR : Errno.EINVAL;
        }
        else if (((valid & FattrMode) != 0 && (U32(body, 68) & 0xFFF) != permissions) ||
                 ((valid & FattrUid) != 0 && U32(body, 76) != 0) || ((valid & FattrGid) != 0 && U32(body, 80) != 0))
        {
            errno = Errno.EPERM;
        }

        if (errno != 0)
        {
            SendError(request, errno);
            return;
        }

        SendAttr(request, node);
    }

    private void HandleOpen(Request request)
    {
        if (request.NodeId == RootId)
        {
            SendError(request, Errno.EISDIR);
            return;
        }

        ReadOnlySpan<byte> body = request.Body;
        if (body.Length < 8 || !_byId.TryGetValue(request.NodeId, out FuseNode? node))
        {
            SendError(request, body.Length < 8 ? Errno.EINVAL : Errno.ENOENT);
            return;
        }

        if ((U32(body, 0) & OAccMode) != ORdOnly && node.Device.IsReadOnly)
        {
            SendError(request, Errno.EROFS);
            return;
        }

        ulong handle;
        lock (_lock)
        {
            // Checked again under the lock: a removal may have won the race since the lookup above.
            if (!_byId.ContainsKey(node.NodeId))
            {
                handle = 0;
            }
            else
            {
                node.OpenCount++;
                handle = (ulong)++_nextHandle;
                _handles[handle] = node;
            }
        }

        if (handle == 0)
        {
            SendError(request, Errno.ENOENT);
            return;
        }

        Span<byte> reply = stackalloc byte[OutHeaderSize + OpenOutSize];
        reply.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(reply[OutHeaderSize..], handle);
        // FOPEN_DIRECT_IO: no page cache for the file, each read/write of the caller becomes one request.
        // FOPEN_PARALLEL_DIRECT_WRITES: direct writes do not take the inode lock, so they reach us concurrently.
        uint openFlags = _options.DirectIo ? FopenDirectIo | FopenParallelDirectWrites : 0;
        BinaryPrimitives.WriteUInt32LittleEndian(reply[(OutHeaderSize + 8)..], openFlags);
        Send(request, reply);
    }

    private void HandleRelease(Request request)
    {
        if (request.Body.Length >= 8 && _handles.TryRemove(U64(request.Body, 0), out FuseNode? node))
        {
            lock (_lock)
            {
                node.OpenCount--;
            }
        }

        SendError(request, 0);
    }

    private void HandleOpenDir(Request request)
    {
        if (request.NodeId != RootId)
        {
            SendError(request, TryGetNode(request.NodeId, out _) ? Errno.ENOTDIR : Errno.ENOENT);
            return;
        }

        Span<byte> reply = stackalloc byte[OutHeaderSize + OpenOutSize];
        reply.Clear();
        Send(request, reply);
    }

    // Cookies are stable under concurrent changes: "." is 1, ".." is 2, a file is its node id + 1 (node ids start at
    // 2 and are never reused), and entries are listed in node-id order. fuse_dirent: ino @0, off @8, namelen @16,
    // type @20, name @24, padded to 8 bytes.
    private void HandleReadDir(Request request)
    {
        ReadOnlySpan<byte> body = request.Body;
        if (request.NodeId != RootId || body.Length < 24)
        {
            SendError(request, request.NodeId != RootId ? Errno.ENOTDIR : Errno.EINVAL);
            return;
        }

        ulong after = U64(body, 8);
        int size = (int)Math.Min(U32(body, 16), (uint)_bufferSize);
        List<(ulong Cookie, ulong Ino, uint Type, string Name)> entries = [(1, RootId, DtDir, "."), (2, RootId, DtDir, "..")];
        lock (_lock)
        {
            entries.AddRange(_byName.Values.OrderBy(n => n.NodeId).Select(n => (n.NodeId + 1, n.NodeId, DtReg, n.Name)));
        }

        byte[] reply = ArrayPool<byte>.Shared.Rent(OutHeaderSize + size);
        try
        {
            int used = OutHeaderSize;
            foreach ((ulong cookie, ulong ino, uint type, string name) in entries.Where(e => e.Cookie > after))
            {
                int nameLength = Encoding.UTF8.GetByteCount(name);
                int record = (DirentHeaderSize + nameLength + 7) & ~7;
                if (used + record > OutHeaderSize + size)
                {
                    break;
                }

                Span<byte> dirent = reply.AsSpan(used, record);
                dirent.Clear();
                BinaryPrimitives.WriteUInt64LittleEndian(dirent, ino);
                BinaryPrimitives.WriteUInt64LittleEndian(dirent[8..], cookie);
                BinaryPrimitives.WriteUInt32LittleEndian(dirent[16..], (uint)nameLength);
                BinaryPrimitives.WriteUInt32LittleEndian(dirent[20..], type);
                Encoding.UTF8.GetBytes(name, dirent[DirentHeaderSize..]);
                used += record;
            }

            Send(request, reply.AsSpan(0, used));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(reply);
        }
    }

    // fuse_kstatfs: blocks @0, bfree @8, bavail @16, files @24, ffree @32, bsize @40, namelen @44, frsize @48.
    // The loop driver enables discard only when statfs on its backing file succeeds, and uses bsize as the discard
    // granularity (drivers/block/loop.c, loop_get_discard_config).
    private void HandleStatFs(Request request)
    {
        long total;
        int files;
        lock (_lock)
        {
            total = _byName.Values.Sum(n => n.Device.Length);
            files = _byName.Count;
        }

        Span<byte> reply = stackalloc byte[OutHeaderSize + StatFsOutSize];
        reply.Clear();
        Span<byte> output = reply[OutHeaderSize..];
        BinaryPrimitives.WriteUInt64LittleEndian(output, (ulong)(total / StatFsBlockSize));
        BinaryPrimitives.WriteUInt64LittleEndian(output[24..], (ulong)files + 1);
        BinaryPrimitives.WriteUInt32LittleEndian(output[40..], StatFsBlockSize);
        BinaryPrimitives.WriteUInt32LittleEndian(output[44..], 255);
        BinaryPrimitives.WriteUInt32LittleEndian(output[48..], StatFsBlockSize);
        Send(request, reply);
    }

    // fuse_read_in: fh @0, offset @8, size @16. A read past the end returns the bytes up to the end (none at or
    // past it), as for any file.
    private async ValueTask ReadAsync(Request request)
    {
        if (!TryGetFile(request, out FuseNode? node, out long offset, out uint size))
        {
            return;
        }

        long length = node.Device.Length;
        int count = offset >= length ? 0 : (int)Math.Min(Math.Min(size, (uint)_options.MaxWrite), length - offset);
        byte[] reply = ArrayPool<byte>.Shared.Rent(OutHeaderSize + count);
        try
        {
            if (count > 0)
            {
                await ReadDeviceAsync(node.Device, offset, reply.AsMemory(OutHeaderSize, count)).ConfigureAwait(false);
            }

            Send(request, reply.AsSpan(0, OutHeaderSize + count));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(reply);
        }
    }

    // fuse_write_in: fh @0, offset @8, size @16, then the data at request byte 80. Writes stop at the end of the
    // device: a write straddling it is short, one starting at or past it fails with ENOSPC (as on a block device).
    private async ValueTask WriteAsync(Request request)
    {
        if (!TryGetFile(request, out FuseNode? node, out long offset, out uint size))
        {
            return;
        }

        if (request.Length != InHeaderSize + WriteInSize + size)
        {
            SendError(request, Errno.EINVAL);
            return;
        }

        if (node.Device.IsReadOnly)
        {
            SendError(request, Errno.EROFS);
            return;
        }

        long length = node.Device.Length;
        if (size > 0 && offset >= length)
        {
            SendError(request, Errno.ENOSPC);
            return;
        }

        int count = (int)Math.Min(size, length - offset);
        if (count > 0)
        {
            try
            {
                await WriteDeviceAsync(node.Device, offset, request.Buffer.AsMemory(InHeaderSize + WriteInSize, count)).ConfigureAwait(false);
            }
            catch (Exception e) when (FuseErrno.From(e) == Errno.ENOSPC)
            {
                NoteOutOfSpace(node);
                throw;
            }

            NoteWritten(node);
        }

        SendWritten(request, count);
    }

    private async ValueTask FlushAsync(Request request)
    {
        if (!TryGetFile(request, out FuseNode? node, out _, out _))
        {
            return;
        }

        await node.Device.FlushAsync().ConfigureAwait(false);
        SendError(request, 0);
    }

    // fuse_fallocate_in: fh @0, offset @8, length @16, mode @24. The loop driver sends PUNCH_HOLE|KEEP_SIZE for
    // discards and for write-zeroes, and ZERO_RANGE|KEEP_SIZE for write-zeroes with NOUNMAP. Both must read back as
    // zeroes afterwards (fallocate(2)), so both become WriteZeroesAsync, which releases whole blocks' storage (a
    // VHDX marks them ZERO and punches them out of its file) as a trim would; a trim may keep old data visible,
    // which would break write-zeroes. Plain allocation cannot reserve space on a thin device: EOPNOTSUPP.
    private async ValueTask FallocateAsync(Request request)
    {
        if (!TryGetFile(request, out FuseNode? node, out long offset, out _))
        {
            return;
        }

        ReadOnlySpan<byte> body = request.Body;
        long length = (long)U64(body, 16);
        uint mode = U32(body, 24);
        bool punch = (mode & FallocPunchHole) != 0;
        bool zero = (mode & FallocZeroRange) != 0;
        if ((mode & ~(FallocKeepSize | FallocPunchHole | FallocZeroRange)) != 0 || !(punch || zero))
        {
            SendError(request, Errno.EOPNOTSUPP);
            return;
        }

        if ((punch && zero) || length <= 0 || length > long.MaxValue - offset)
        {
            SendError(request, Errno.EINVAL);
            return;
        }

        if (node.Device.IsReadOnly)
        {
            SendError(request, Errno.EROFS);
            return;
        }

        long end = offset + length;
        long size = node.Device.Length;
        if (end > size && (mode & FallocKeepSize) == 0)
        {
            // Zeroing past the end without KEEP_SIZE would grow the file.
            SendError(request, Errno.EFBIG);
            return;
        }

        if (offset < size)
        {
            try
            {
                await ZeroDeviceAsync(node.Device, offset, Math.Min(end, size) - offset).ConfigureAwait(false);
            }
            catch (Exception e) when (FuseErrno.From(e) == Errno.ENOSPC)
            {
                NoteOutOfSpace(node);
                throw;
            }

            NoteWritten(node);
        }

        SendError(request, 0);
    }

    // fuse_lseek_in: fh @0, offset @8, whence @16. SEEK_DATA/SEEK_HOLE from the device's map (zero extents count as
    // holes), so sparse-aware copies of the file skip what the device does not hold.
    private async ValueTask LseekAsync(Request request)
    {
        if (!TryGetFile(request, out FuseNode? node, out long offset, out _))
        {
            return;
        }

        uint whence = U32(request.Body, 16);
        long size = node.Device.Length;
        if (whence is not (SeekData or SeekHole))
        {
            SendError(request, Errno.EINVAL);
            return;
        }

        if (offset >= size)
        {
            SendError(request, Errno.ENXIO);
            return;
        }

        long start = offset / node.Device.SectorSize * node.Device.SectorSize;
        long found = whence == SeekHole ? size : -1;
        await foreach (Extent extent in node.Device.MapAsync(start, size - start).ConfigureAwait(false))
        {
            if (extent.End > offset && (extent.Kind == ExtentKind.Data) == (whence == SeekData))
            {
                found = Math.Max(extent.Offset, offset);
                break;
            }
        }

        if (found < 0)
        {
            SendError(request, Errno.ENXIO);
            return;
        }

        Span<byte> reply = stackalloc byte[OutHeaderSize + LseekOutSize];
        BinaryPrimitives.WriteInt64LittleEndian(reply[OutHeaderSize..], found);
        Send(request, reply);
    }

    // Reads, writes and zeroes at any byte offset: the device takes sector-aligned requests only, so an unaligned
    // edge goes through a bounce buffer. Unaligned writes read-modify-write whole sectors under one gate; they are
    // rare (a loop device sends aligned blocks), and a concurrent aligned write to the same sector is not ordered
    // against them, as on any device with larger sectors than the request.
    private static async ValueTask ReadDeviceAsync(IBlockDevice device, long offset, Memory<byte> destination)
    {
        long mask = device.SectorSize - 1;
        if (((offset | (long)destination.Length) & mask) == 0)
        {
            await device.ReadAsync(offset, destination).ConfigureAwait(false);
            return;
        }

        long start = offset & ~mask;
        long end = (offset + destination.Length + mask) & ~mask;
        int count = (int)(end - start);
        byte[] bounce = ArrayPool<byte>.Shared.Rent(count);
        try
        {
            await device.ReadAsync(start, bounce.AsMemory(0, count)).ConfigureAwait(false);
            bounce.AsSpan((int)(offset - start), destination.Length).CopyTo(destination.Span);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bounce);
        }
    }

    // The first ENOSPC of a file since its last successful write is a warning naming the file (a layer id) and the
    // free space of the store's file system; the requests themselves fail at Debug (HandleAsync), since the kernel
    // retries and a full store fails every one.
    private void NoteOutOfSpace(FuseNode node)
    {
        if (node.MarkOutOfSpace())
        {
            string directory = _options.StorageDirectory ?? _mountPoint;
            Log.OutOfSpace(_logger, node.Name, directory, FreeSpace(directory));
        }
    }

    private void NoteWritten(FuseNode node)
    {
        if (node.MarkWritten())
        {
            Log.SpaceAgain(_logger, node.Name);
        }
    }

    // "N bytes available, M free" on the file system holding `directory`, as df counts them: available to
    // unprivileged users (f_bavail) and free including root's reserve (f_bfree).
    private static string FreeSpace(string directory)
    {
        try
        {
            var drive = new DriveInfo(directory);
            return $"{drive.AvailableFreeSpace} bytes available, {drive.TotalFreeSpace} free";
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return $"free space unknown: {e.Message}";
        }
    }

    private async ValueTask WriteDeviceAsync(IBlockDevice device, long offset, ReadOnlyMemory<byte> data)
    {
        long mask = device.SectorSize - 1;
        if (((offset | (long)data.Length) & mask) == 0)
        {
            await device.WriteAsync(offset, data).ConfigureAwait(false);
            return;
        }

        long start = offset & ~mask;
        long end = (offset + data.Length + mask) & ~mask;
        int count = (int)(end - start);
        byte[] bounce = ArrayPool<byte>.Shared.Rent(count);
        await _unalignedGate.WaitAsync().ConfigureAwait(false);
        try
        {
            await device.ReadAsync(start, bounce.AsMemory(0, count)).ConfigureAwait(false);
            data.Span.CopyTo(bounce.AsSpan((int)(offset - start)));
            await device.WriteAsync(start, bounce.AsMemory(0, count)).ConfigureAwait(false);
        }
        finally
        {
            _unalignedGate.Release();
            ArrayPool<byte>.Shared.Return(bounce);
        }
    }

    private async ValueTask ZeroDeviceAsync(IBlockDevice device, long offset, long length)
    {
        long mask = device.SectorSize - 1;
        long end = offset + length;
        long alignedStart = (offset + mask) & ~mask;
        long alignedEnd = end & ~mask;
        if (alignedStart >= alignedEnd)
        {
            await WriteZeroBytesAsync(device, offset, (int)length).ConfigureAwait(false);
            return;
        }

        if (offset < alignedStart)
        {
            await WriteZeroBytesAsync(device, offset, (int)(alignedStart - offset)).ConfigureAwait(false);
        }

        await device.WriteZeroesAsync(alignedStart, alignedEnd - alignedStart).ConfigureAwait(false);
        if (end > alignedEnd)
        {
            await WriteZeroBytesAsync(device, alignedEnd, (int)(end - alignedEnd)).ConfigureAwait(false);
        }
    }

    private async ValueTask WriteZeroBytesAsync(IBlockDevice device, long offset, int count)
    {
        byte[] zeroes = ArrayPool<byte>.Shared.Rent(count);
        try
        {
            Array.Clear(zeroes, 0, count);
            await WriteDeviceAsync(device, offset, zeroes.AsMemory(0, count)).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(zeroes);
        }
    }

    // The file a READ/WRITE/FSYNC/FLUSH/FALLOCATE/LSEEK names: by its handle (fh @0 of every one of those bodies),
    // else by node id. Also parses offset @8 and size @16 where the body has them. Replies with an error and
    // returns false when the request cannot be served.
    private bool TryGetFile(Request request, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out FuseNode? node, out long offset, out uint size)
    {
        ReadOnlySpan<byte> body = request.Body;
        offset = 0;
        size = 0;
        node = null;
        if (body.Length < 16)
        {
            SendError(request, Errno.EINVAL);
            return false;
        }

        if (!_handles.TryGetValue(U64(body, 0), out node) && !_byId.TryGetValue(request.NodeId, out node))
        {
            SendError(request, request.NodeId == RootId ? Errno.EISDIR : Errno.EBADF);
            return false;
        }

        ulong rawOffset = U64(body, 8);
        if (request.Opcode is Read or Write or Fallocate or Lseek)
        {
            if (rawOffset > long.MaxValue)
            {
                SendError(request, Errno.EINVAL);
                return false;
            }

            offset = (long)rawOffset;
        }

        if (body.Length >= 20)
        {
            size = U32(body, 16);
        }

        return true;
    }

    private bool TryGetNode(ulong nodeId, out FuseNode? node)
    {
        node = null;
        return nodeId == RootId || _byId.TryGetValue(nodeId, out node);
    }

    private (ulong Seconds, uint Nanoseconds) Timeout()
    {
        long ticks = _options.AttributeTimeout.Ticks;
        return ((ulong)(ticks / TimeSpan.TicksPerSecond), (uint)(ticks % TimeSpan.TicksPerSecond * 100));
    }

    // fuse_attr (88 bytes): ino @0, size @8, blocks @16 (512-byte units), atime/mtime/ctime @24/32/40, their nsec
    // @48/52/56, mode @60, nlink @64, uid @68, gid @72, rdev @76, blksize @80, flags @84.
    private void WriteAttr(Span<byte> attr, FuseNode? node)
    {
        attr.Clear();
        ulong size = node is null ? 0 : (ulong)node.Device.Length;
        ulong time = (ulong)(node?.CreatedSeconds ?? _createdSeconds);
        BinaryPrimitives.WriteUInt64LittleEndian(attr, node?.NodeId ?? RootId);
        BinaryPrimitives.WriteUInt64LittleEndian(attr[8..], size);
        BinaryPrimitives.WriteUInt64LittleEndian(attr[16..], (size + 511) / 512);
        BinaryPrimitives.WriteUInt64LittleEndian(attr[24..], time);
        BinaryPrimitives.WriteUInt64LittleEndian(attr[32..], time);
        BinaryPrimitives.WriteUInt64LittleEndian(attr[40..], time);
        BinaryPrimitives.WriteUInt32LittleEndian(attr[60..], node is null ? SIfDir | DirectoryPermissions : SIfReg | node.Permissions);
        BinaryPrimitives.WriteUInt32LittleEndian(attr[64..], node is null ? 2u : 1u);
        BinaryPrimitives.WriteUInt32LittleEndian(attr[80..], 4096);
    }

    // fuse_attr_out: attr_valid @0, attr_valid_nsec @8, dummy @12, attr @16.
    private void SendAttr(Request request, FuseNode? node)
    {
        Span<byte> reply = stackalloc byte[OutHeaderSize + AttrOutSize];
        reply.Clear();
        Span<byte> output = reply[OutHeaderSize..];
        (ulong seconds, uint nanoseconds) = Timeout();
        BinaryPrimitives.WriteUInt64LittleEndian(output, seconds);
        BinaryPrimitives.WriteUInt32LittleEndian(output[8..], nanoseconds);
        WriteAttr(output.Slice(16, AttrSize), node);
        Send(request, reply);
    }

    private void SendWritten(Request request, int count)
    {
        Span<byte> reply = stackalloc byte[OutHeaderSize + WriteOutSize];
        reply.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(reply[OutHeaderSize..], (uint)count);
        Send(request, reply);
    }

    // A reply with no body: success (errno 0) or an error. Error replies must be exactly the 16-byte header.
    private void SendError(Request request, int errno)
    {
        Span<byte> reply = stackalloc byte[OutHeaderSize];
        Send(request, reply, errno);
    }

    // fuse_out_header: len @0, error @4 (negative errno), unique @8. One write(2) per reply, to the fd the request
    // came from. ENOENT means the request was interrupted and is gone; ENODEV, that the connection is.
    private unsafe void Send(Request request, Span<byte> reply, int errno = 0)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(reply, (uint)reply.Length);
        BinaryPrimitives.WriteInt32LittleEndian(reply[4..], -errno);
        BinaryPrimitives.WriteUInt64LittleEndian(reply[8..], request.Unique);
        nint written;
        fixed (byte* p = reply)
        {
            written = Libc.Write(request.Fd, p, reply.Length);
        }

        if (written < 0)
        {
            int error = LastErrno();
            if (error is not (Errno.ENOENT or Errno.ENODEV or Errno.ECONNABORTED))
            {
                Log.ReplyFailed(_logger, $"opcode {request.Opcode}: {Errno.Describe(error)}");
            }
        }
    }

    private static uint U32(ReadOnlySpan<byte> span, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(span[offset..]);

    private static ulong U64(ReadOnlySpan<byte> span, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(span[offset..]);

    /// <summary>One request as read from an fd: the buffer holds fuse_in_header and the body.</summary>
    [StructLayout(LayoutKind.Auto)]
    private readonly struct Request(int fd, byte[] buffer, int length)
    {
        public int Fd => fd;

        public byte[] Buffer => buffer;

        public int Length => length;

        public uint Opcode => BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(4));

        public ulong Unique => BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(8));

        public ulong NodeId => BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(16));

        public ReadOnlySpan<byte> Body => buffer.AsSpan(InHeaderSize, length - InHeaderSize);
    }
}
