using System.Buffers;
using System.Buffers.Binary;
using BlockDriver.Abstractions;

namespace BlockDriver.Mount.Tar;

/// <summary>An open directory inside a layer root, reached with openat2(RESOLVE_IN_ROOT) or openat(O_NOFOLLOW) from
/// an open parent, so that no path a tar names, and no symbolic link in the tree, can lead outside the root. Names
/// are bytes. Owns the descriptor.</summary>
internal sealed class DirectoryHandle : IDisposable
{
    private DirectoryHandle(int fd, byte[] path)
    {
        Fd = fd;
        Path = path;
    }

    /// <summary>The descriptor, for *at calls.</summary>
    public int Fd { get; private set; }

    /// <summary>The path relative to the root ("" for the root).</summary>
    public byte[] Path { get; }

    /// <summary>The path for messages (lossy where it is not UTF-8).</summary>
    public string DisplayPath => ByteNames.Display(Path);

    /// <summary>A NUL-terminated path naming an entry of this directory for calls that only take paths (xattrs of a
    /// symbolic link): through /proc/self/fd, whose magic link is this very directory, whatever happens to its
    /// name; the entry itself is not followed by the l* calls.</summary>
    public byte[] ProcPath(ReadOnlySpan<byte> name) => FsNative.Z(ByteNames.Join(ByteNames.FromString($"/proc/self/fd/{Fd}"), name));

    /// <summary>Opens the layer root itself.</summary>
    public static DirectoryHandle OpenRoot(string root)
    {
        int fd = FsNative.Open(root, FsNative.ORdOnly | FsNative.ODirectory | FsNative.OCloExec, 0);
        if (fd < 0)
        {
            throw new BlockDriverException(ErrorKind.NotFound, $"{root}: cannot open the layer root: {FsNative.Describe(FsNative.LastError)}.");
        }

        return new DirectoryHandle(fd, []);
    }

    /// <summary>Opens directory <paramref name="relative"/> (components separated by '/') below
    /// <paramref name="root"/>, resolved as if the root were "/"; with <paramref name="create"/>, missing
    /// components are made (mode 0755, as Docker does for parents a tar does not list). Returns null when it does
    /// not exist and is not to be created.</summary>
    /// <exception cref="BlockDriverException">InvalidArgument when the path is longer than the kernel takes.</exception>
    public static DirectoryHandle? Open(DirectoryHandle root, byte[] relative, bool create)
    {
        if (relative.Length == 0)
        {
            return Reopen(root);
        }

        int fd = FsNative.Openat2(root.Fd, relative, FsNative.ORdOnly | FsNative.ODirectory | FsNative.OCloExec,
            FsNative.ResolveInRoot | FsNative.ResolveNoMagicLinks);
        if (fd >= 0)
        {
            return new DirectoryHandle(fd, relative);
        }

        int errno = FsNative.LastError;
        if (errno is FsNative.ENAMETOOLONG or FsNative.ENOTDIR or FsNative.ELOOP)
        {
            // A path (or a component) longer than the kernel takes, or one through something that is not a
            // directory: the tar's names do not make a tree.
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"layer tar: \"{ByteNames.Display(relative.AsSpan(0, Math.Min(relative.Length, 256)))}\" cannot be opened as a directory: {FsNative.Describe(errno)}.");
        }

        if (errno != FsNative.ENOENT || !create)
        {
            return errno == FsNative.ENOENT ? null
                : throw new IOException($"{ByteNames.Display(relative)}: cannot open the directory in the layer: {FsNative.Describe(errno)}.");
        }

        // Make the missing components one at a time, each inside the directory opened before it.
        DirectoryHandle current = Reopen(root);
        byte[] path = [];
        foreach (Range range in relative.AsSpan().Split((byte)'/'))
        {
            byte[] component = relative[range];
            path = ByteNames.Join(path, component);
            if (FsNative.Mkdirat(current.Fd, component, 0x1ED /* 0755 */) != 0 && FsNative.LastError != FsNative.EEXIST)
            {
                int error = FsNative.LastError;
                current.Dispose();
                throw error == FsNative.ENAMETOOLONG
                    ? new BlockDriverException(ErrorKind.InvalidArgument, $"layer tar: \"{ByteNames.Display(path)}\": a name longer than the file system takes.")
                    : new IOException($"{ByteNames.Display(path)}: cannot create the directory in the layer: {FsNative.Describe(error)}.");
            }

            DirectoryHandle? next = Open(root, path, create: false);
            current.Dispose();
            // Null: the name is there but leads nowhere in the root (a dangling symbolic link an entry made).
            current = next ?? throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"layer tar: \"{ByteNames.Display(path)}\" exists but does not lead to a directory in the layer.");
        }

        return current;
    }

    /// <summary>Opens an entry of this directory as a directory (not following a symbolic link), readable so that
    /// its entries can be listed; null when it is not a directory (or no longer there).</summary>
    public DirectoryHandle? OpenChild(byte[] name)
    {
        int fd = FsNative.Openat(Fd, name, FsNative.ORdOnly | FsNative.ODirectory | FsNative.ONoFollow | FsNative.OCloExec, 0);
        return fd < 0 ? null : new DirectoryHandle(fd, ByteNames.Join(Path, name));
    }

    /// <summary>The names in this directory (not "." or ".."), as the kernel has them.</summary>
    public unsafe List<byte[]> Names()
    {
        // A descriptor of its own: getdents64 moves the offset of the one it reads.
        int fd = FsNative.Openat(Fd, "."u8, FsNative.ORdOnly | FsNative.ODirectory | FsNative.OCloExec, 0);
        if (fd < 0)
        {
            throw new IOException($"{DisplayPath}: cannot list the directory: {FsNative.Describe(FsNative.LastError)}.");
        }

        var names = new List<byte[]>();
        byte[] buffer = ArrayPool<byte>.Shared.Rent(32 * 1024);
        try
        {
            while (true)
            {
                nint length;
                fixed (byte* p = buffer)
                {
                    length = FsNative.Getdents64(fd, p, (nuint)buffer.Length);
                }

                if (length < 0)
                {
                    throw new IOException($"{DisplayPath}: cannot list the directory: {FsNative.Describe(FsNative.LastError)}.");
                }

                if (length == 0)
                {
                    return names;
                }

                // struct linux_dirent64: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, char d_name[] (NUL-ended).
                for (int offset = 0; offset < length;)
                {
                    ReadOnlySpan<byte> record = buffer.AsSpan(offset, BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(offset + 16)));
                    ReadOnlySpan<byte> name = record[19..];
                    name = name[..name.IndexOf((byte)0)];
                    if (!name.SequenceEqual("."u8) && !name.SequenceEqual(".."u8))
                    {
                        names.Add(name.ToArray());
                    }

                    offset += record.Length;
                }
            }
        }
        finally
        {
            FsNative.Close(fd);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Fd >= 0)
        {
            FsNative.Close(Fd);
            Fd = -1;
        }
    }

    private static DirectoryHandle Reopen(DirectoryHandle directory)
    {
        int fd = FsNative.Openat(directory.Fd, "."u8, FsNative.ORdOnly | FsNative.ODirectory | FsNative.OCloExec, 0);
        return fd < 0 ? throw new IOException($"cannot reopen the layer root: {FsNative.Describe(FsNative.LastError)}.") : new DirectoryHandle(fd, directory.Path);
    }
}
