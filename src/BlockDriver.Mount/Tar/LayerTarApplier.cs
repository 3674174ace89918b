using System.Buffers;
using BlockDriver.Abstractions;
using BlockDriver.Interop;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Mount.Tar;

/// <summary>Applies a Docker/OCI layer tar to a directory (a mounted layer): files (sparse ones with their holes),
/// directories, symbolic and hard links, device nodes and FIFOs with their owners, modes, times and extended
/// attributes; <c>.wh.NAME</c> deletes NAME and <c>.wh..wh..opq</c> empties a directory of what lower layers put
/// there. Names, link targets and xattr values are bytes throughout (see <see cref="LayerTarReader"/> for the
/// formats read).</summary>
/// <remarks>
/// <para>A hostile tar cannot touch anything outside the root: names are cleaned and one that climbs out is
/// refused; every directory is opened with openat2(RESOLVE_IN_ROOT), so a symbolic link in the tree (planted by an
/// earlier entry or a lower layer) resolves inside the root; the final name is created with O_NOFOLLOW/O_EXCL and
/// *at calls that do not follow links; owner, mode, times and xattrs are set on an fd of the entry opened with
/// O_NOFOLLOW (a symbolic link's own owner and times; its mode is not set), so a racing process that swaps the entry
/// for a link cannot redirect them; a hard link's target is looked up the same way.</para>
/// <para>Bounded memory whatever the tar holds: headers are capped, file content is streamed.</para>
/// <para>Runs as root (owners and device nodes need it). Not thread-safe; one tar at a time per root.</para>
/// </remarks>
public static class LayerTarApplier
{
    private const int BufferSize = 1 << 20;

    /// <summary>Applies <paramref name="tar"/> to the directory <paramref name="root"/> and returns the bytes of
    /// file content written (what Docker's ApplyDiff reports as the layer's size; a sparse file counts its real
    /// size).</summary>
    /// <exception cref="BlockDriverException">InvalidArgument for an entry that escapes the root or a malformed
    /// tar, naming the entry; the entries before it stay applied (the caller discards the layer).</exception>
    public static async Task<long> ApplyAsync(Stream tar, string root, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(tar);
        using DirectoryHandle rootHandle = DirectoryHandle.OpenRoot(root);
        var state = new State(rootHandle, new LayerTarReader(tar));
        long written = 0;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            while (await state.Reader.NextAsync(ct).ConfigureAwait(false) is { } header)
            {
                written += await ApplyEntryAsync(state, header, buffer, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        // Directory times last: creating their entries changed them.
        for (int i = state.DirectoryTimes.Count - 1; i >= 0; i--)
        {
            (byte[] path, long seconds, uint nanoseconds) = state.DirectoryTimes[i];
            if (path.Length == 0)
            {
                SetTimes(rootHandle.Fd, seconds, nanoseconds, "/");
                continue;
            }

            (byte[] directory, byte[] name) = TarPaths.Split(path);
            using DirectoryHandle? parent = DirectoryHandle.Open(rootHandle, directory, create: false);
            if (parent is null)
            {
                continue; // removed by a later whiteout
            }

            using SafeFileHandle? fd = OpenEntry(parent, name, FsNative.SIfDir);
            if (fd is not null)
            {
                SetTimes((int)fd.DangerousGetHandle(), seconds, nanoseconds, ByteNames.Display(path));
            }
        }

        return written;
    }

    private static async Task<long> ApplyEntryAsync(State state, TarHeader header, byte[] buffer, CancellationToken ct)
    {
        byte[] path = TarPaths.Clean(header.Name);
        byte type = header.TypeFlag;
        if (type == TarTypeFlag.GnuDumpDir)
        {
            type = TarTypeFlag.Directory; // its data (a listing of names) is skipped
        }
        else if (type == TarTypeFlag.Contiguous)
        {
            type = TarTypeFlag.Regular;
        }
        else if (type == TarTypeFlag.GnuVolumeLabel)
        {
            return 0;
        }

        if (type is not (TarTypeFlag.Regular or TarTypeFlag.Directory or TarTypeFlag.Symlink or TarTypeFlag.HardLink
            or TarTypeFlag.CharDevice or TarTypeFlag.BlockDevice or TarTypeFlag.Fifo))
        {
            // moby's createTarFile: "unhandled tar header type".
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer tar: entry \"{header.DisplayName}\": type {TarTypeFlag.Describe(type)} is not supported.");
        }

        if (path.Length == 0)
        {
            // The root itself ("./"): only its times, as Docker does.
            if (type == TarTypeFlag.Directory)
            {
                state.DirectoryTimes.Add(([], header.MtimeSeconds, header.MtimeNanoseconds));
            }

            return 0;
        }

        (byte[] directory, byte[] name) = TarPaths.Split(path);
        if (name.AsSpan().StartsWith(TarPaths.WhiteoutPrefix))
        {
            ApplyWhiteout(state, directory, name, header);
            return 0;
        }

        using DirectoryHandle parent = DirectoryHandle.Open(state.Root, directory, create: true)!;
        FileStat? existing = FileStat.At(parent.Fd, name);
        if (existing is { } e && !(e.IsDirectory && type == TarTypeFlag.Directory))
        {
            RemoveTree(parent, name);
        }

        string display = header.DisplayName;
        long written = 0;
        uint expected;
        SafeFileHandle? fd = null;
        try
        {
            switch (type)
            {
                case TarTypeFlag.Directory:
                    if (existing is not { IsDirectory: true })
                    {
                        Check(FsNative.Mkdirat(parent.Fd, name, 0x1C0 /* 0700 */), display, "mkdir");
                    }

                    state.DirectoryTimes.Add((path, header.MtimeSeconds, header.MtimeNanoseconds));
                    expected = FsNative.SIfDir;
                    break;

                case TarTypeFlag.Regular:
                    (fd, written) = await WriteFileAsync(state.Reader, parent, name, header, buffer, ct).ConfigureAwait(false);
                    expected = FsNative.SIfReg;
                    break;

                case TarTypeFlag.Symlink:
                    // The target is stored as is: it is resolved inside the container at run time, and every later
                    // entry of this tar is opened in-root, so a link pointing out leads nowhere outside.
                    if (header.LinkName.Contains((byte)0) || header.LinkName.Length == 0)
                    {
                        throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer tar: symbolic link \"{display}\" has an empty target or a NUL in it.");
                    }

                    Check(FsNative.Symlinkat(header.LinkName, parent.Fd, name), display, "symlink");
                    expected = FsNative.SIfLnk;
                    break;

                case TarTypeFlag.HardLink:
                    LinkTo(state.Root, parent, name, header);
                    state.Unpacked.Add(path);
                    return 0;

                default:
                    expected = type switch
                    {
                        TarTypeFlag.CharDevice => FsNative.SIfChr,
                        TarTypeFlag.BlockDevice => FsNative.SIfBlk,
                        _ => FsNative.SIfIfo,
                    };
                    ulong device = expected == FsNative.SIfIfo ? 0 : FsNative.MakeDev(header.DevMajor, header.DevMinor);
                    Check(FsNative.Mknodat(parent.Fd, name, expected | 0x180 /* 0600 */, device), display, "mknod");
                    break;
            }

            fd ??= OpenEntry(parent, name, expected)
                ?? throw new IOException($"{display}: removed or replaced by another kind of file while it was applied.");
            SetMetadata(parent, name, fd, expected, header);
        }
        finally
        {
            fd?.Dispose();
        }

        state.Unpacked.Add(path);
        return written;
    }

    // Creates the file and streams its data in (a sparse file's regions at their offsets, its size set after, so the
    // holes stay holes); returns the open file for its metadata and the bytes of content it holds.
    private static async Task<(SafeFileHandle, long)> WriteFileAsync(LayerTarReader reader, DirectoryHandle parent, byte[] name, TarHeader header,
        byte[] buffer, CancellationToken ct)
    {
        int fd = FsNative.Openat(parent.Fd, name, FsNative.OWrOnly | FsNative.OCreat | FsNative.OExcl | FsNative.ONoFollow | FsNative.OCloExec, 0x180 /* 0600 */);
        Check(fd < 0 ? -1 : 0, header.DisplayName, "create");
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            // The size first: a sparse file too large for the file system is refused before any data is read, and
            // the regions (checked to lie inside it) are then written into place, the rest staying holes.
            if (header.Sparse is not null)
            {
                Check(FsNative.Ftruncate(fd, header.RealSize), header.DisplayName, $"ftruncate to {header.RealSize} bytes");
            }

            IReadOnlyList<SparseSegment> segments = header.Sparse ?? [new SparseSegment(0, header.Size)];
            foreach (SparseSegment segment in segments)
            {
                for (long done = 0; done < segment.Length;)
                {
                    int read = await reader.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, segment.Length - done)), ct).ConfigureAwait(false);
                    await RandomAccess.WriteAsync(handle, buffer.AsMemory(0, read), segment.Offset + done, ct).ConfigureAwait(false);
                    done += read;
                }
            }


            return (handle, header.RealSize);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static void LinkTo(DirectoryHandle root, DirectoryHandle parent, byte[] name, TarHeader header)
    {
        byte[] target = TarPaths.Clean(header.LinkName);
        (byte[] targetDirectory, byte[] targetName) = TarPaths.Split(target);
        using DirectoryHandle? targetParent = target.Length == 0 ? null : DirectoryHandle.Open(root, targetDirectory, create: false);
        if (targetParent is null || FileStat.At(targetParent.Fd, targetName) is not { IsDirectory: false })
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"layer tar: hard link \"{header.DisplayName}\" -> \"{ByteNames.Display(header.LinkName)}\": no such file in the layer.");
        }

        Check(FsNative.Linkat(targetParent.Fd, targetName, parent.Fd, name, 0), header.DisplayName, "link");
    }

    // Opens an entry as O_PATH|O_NOFOLLOW (a symbolic link is the link) and checks it is of the expected type;
    // null when it is not there or not of that type.
    private static SafeFileHandle? OpenEntry(DirectoryHandle parent, byte[] name, uint expected)
    {
        int fd = FsNative.Openat(parent.Fd, name, FsNative.OPath | FsNative.ONoFollow | FsNative.OCloExec, 0);
        if (fd < 0)
        {
            return null;
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (FileStat.OfFd(fd).Type != expected)
        {
            handle.Dispose();
            return null;
        }

        return handle;
    }

    // Owner, then mode (chown clears set-id bits), xattrs and (not for a directory: its entries would change it
    // again) times, all on the entry's fd.
    private static unsafe void SetMetadata(DirectoryHandle parent, byte[] name, SafeFileHandle handle, uint type, TarHeader header)
    {
        int fd = (int)handle.DangerousGetHandle();
        string display = header.DisplayName;
        Check(FsNative.FchownEmptyPath(fd, header.Uid, header.Gid), display, "chown");
        if (type != FsNative.SIfLnk)
        {
            Check(FsNative.FchmodPath(fd, header.Mode & 0xFFF /* 07777 */), display, "chmod");
        }

        if (header.Xattrs.Count > 0)
        {
            // A symbolic link's own xattrs by name in its (open) directory, not followed; anything else through
            // its fd's magic link, which is that inode.
            byte[] target = type == FsNative.SIfLnk ? parent.ProcPath(name) : FsNative.Z(ByteNames.FromString($"/proc/self/fd/{fd}"));
            foreach ((byte[] key, byte[] value) in header.Xattrs)
            {
                fixed (byte* p = target)
                fixed (byte* k = FsNative.Z(key))
                fixed (byte* v = value)
                {
                    int result = type == FsNative.SIfLnk
                        ? FsNative.Lsetxattr(p, k, v, (nuint)value.Length, 0)
                        : FsNative.Setxattr(p, k, v, (nuint)value.Length, 0);
                    if (result != 0)
                    {
                        int errno = Errno.Last;
                        string what = $"{display}: setxattr {ByteNames.Display(key)} ({value.Length} bytes): {Errno.Message(errno)}";
                        throw errno switch
                        {
                            // EINVAL (22), ERANGE (34), E2BIG (7): the value (or name) is not one the kernel takes,
                            // e.g. a malformed security.capability: bad input, not a fault here.
                            22 or 34 or 7 => new BlockDriverException(ErrorKind.InvalidArgument, $"layer tar: {what}."),
                            Errno.ENOTSUP => new BlockDriverException(ErrorKind.InvalidArgument, $"layer tar: {what} (not supported by the layer's file system)."),
                            _ => new IOException($"{what}."),
                        };
                    }
                }
            }
        }

        if (type != FsNative.SIfDir)
        {
            SetTimes(fd, header.MtimeSeconds, header.MtimeNanoseconds, display);
        }
    }

    private static void ApplyWhiteout(State state, byte[] directory, byte[] name, TarHeader header)
    {
        using DirectoryHandle? parent = DirectoryHandle.Open(state.Root, directory, create: false);
        if (parent is null)
        {
            return;
        }

        if (name.AsSpan().SequenceEqual(TarPaths.OpaqueMarker))
        {
            // Hide what lower layers had here, but keep what this tar has already put in the directory.
            foreach (byte[] child in parent.Names())
            {
                if (!state.Unpacked.Contains(ByteNames.Join(directory, child)))
                {
                    RemoveTree(parent, child);
                }
            }

            return;
        }

        if (name.AsSpan(TarPaths.WhiteoutPrefix.Length).StartsWith(TarPaths.WhiteoutPrefix))
        {
            return; // other AUFS metadata (.wh..wh.plnk, ...): not a deletion.
        }

        byte[] victim = name[TarPaths.WhiteoutPrefix.Length..];
        if (victim.Length == 0 || victim.AsSpan().SequenceEqual("."u8) || victim.AsSpan().SequenceEqual(".."u8))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer tar: whiteout \"{header.DisplayName}\" names no file.");
        }

        RemoveTree(parent, victim);
    }

    /// <summary>Deletes an entry of a directory and, for a directory, everything below it: iteratively, one open
    /// directory per level, never following a symbolic link; deeper than <see cref="TarPaths.MaxDepth"/> levels it
    /// stops with InvalidArgument.</summary>
    internal static void RemoveTree(DirectoryHandle parent, byte[] name)
    {
        if (FileStat.At(parent.Fd, name) is not { } stat)
        {
            return;
        }

        if (!stat.IsDirectory)
        {
            Check(FsNative.Unlinkat(parent.Fd, name, 0), ByteNames.Display(name), "unlink");
            return;
        }

        // Each frame: a directory being emptied, its names, where it is in them, and its own name in the frame below.
        var stack = new Stack<(DirectoryHandle Directory, List<byte[]> Names, int Index, byte[] Name)>();
        try
        {
            DirectoryHandle? top = parent.OpenChild(name);
            if (top is null)
            {
                return;
            }

            stack.Push((top, top.Names(), 0, name));
            while (stack.Count > 0)
            {
                (DirectoryHandle directory, List<byte[]> names, int index, byte[] own) = stack.Pop();
                if (index < names.Count)
                {
                    byte[] child = names[index];
                    stack.Push((directory, names, index + 1, own));
                    if (FileStat.At(directory.Fd, child) is { IsDirectory: true })
                    {
                        if (stack.Count >= TarPaths.MaxDepth)
                        {
                            throw new BlockDriverException(ErrorKind.InvalidArgument,
                                $"cannot remove \"{ByteNames.Display(name)}\": more than {TarPaths.MaxDepth} directory levels deep.");
                        }

                        if (directory.OpenChild(child) is { } sub)
                        {
                            stack.Push((sub, sub.Names(), 0, child));
                        }
                    }
                    else
                    {
                        Check(FsNative.Unlinkat(directory.Fd, child, 0), ByteNames.Display(child), "unlink");
                    }

                    continue;
                }

                directory.Dispose();
                DirectoryHandle holder = stack.Count > 0 ? stack.Peek().Directory : parent;
                Check(FsNative.Unlinkat(holder.Fd, own, FsNative.AtRemoveDir), ByteNames.Display(own), "rmdir");
            }
        }
        finally
        {
            while (stack.Count > 0)
            {
                stack.Pop().Directory.Dispose();
            }
        }
    }

    private static unsafe void SetTimes(int fd, long seconds, uint nanoseconds, string display)
    {
        var time = new FsNative.Timespec { Seconds = seconds, Nanoseconds = nanoseconds };
        FsNative.Timespec* times = stackalloc FsNative.Timespec[2];
        times[0] = time;
        times[1] = time;
        Check(FsNative.UtimensEmptyPath(fd, times), display, "utimensat");
    }

    // A failed call: what the tar asked for that the file system refuses (a name or target too long, a path through
    // a non-directory, a size past the file system's limit, too many links, an invalid argument) is the tar's fault,
    // InvalidArgument; anything else is an I/O failure here.
    private static void Check(int result, string path, string operation)
    {
        if (result != 0)
        {
            int errno = Errno.Last;
            string message = $"{path}: {operation}: {Errno.Message(errno)} (errno {errno})";
            throw errno is Errno.ENAMETOOLONG or Errno.ENOTDIR or Errno.ELOOP or Errno.EFBIG or Errno.EINVAL or Errno.EMLINK
                ? new BlockDriverException(ErrorKind.InvalidArgument, $"layer tar: {message}.")
                : new IOException($"{message}.");
        }
    }

    private sealed class State(DirectoryHandle root, LayerTarReader reader)
    {
        public DirectoryHandle Root { get; } = root;

        public LayerTarReader Reader { get; } = reader;

        public HashSet<byte[]> Unpacked { get; } = new(ByteNames.Comparer);

        public List<(byte[] Path, long Seconds, uint Nanoseconds)> DirectoryTimes { get; } = [];
    }
}
