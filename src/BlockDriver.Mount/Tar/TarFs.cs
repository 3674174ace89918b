using BlockDriver.Interop;
namespace BlockDriver.Mount.Tar;

/// <summary>Reading link targets and extended attributes of a directory entry without following it; bytes in,
/// bytes out.</summary>
internal static unsafe class TarFs
{
    /// <summary>The target of symbolic link <paramref name="name"/> in <paramref name="directory"/>, as stored.</summary>
    public static byte[] ReadLink(DirectoryHandle directory, ReadOnlySpan<byte> name)
    {
        byte* buffer = stackalloc byte[4096];
        nint length = FsNative.Readlinkat(directory.Fd, name, buffer, 4096);
        return length < 0
            ? throw new IOException($"{ByteNames.Display(name)}: readlink: {Errno.Message(Errno.Last)}.")
            : new ReadOnlySpan<byte>(buffer, (int)length).ToArray();
    }

    /// <summary>The extended attributes of entry <paramref name="name"/> (not followed), names in byte order.</summary>
    public static SortedDictionary<byte[], byte[]> ExtendedAttributes(DirectoryHandle directory, ReadOnlySpan<byte> name)
    {
        var attributes = new SortedDictionary<byte[], byte[]>(ByteNames.Comparer);
        byte[] path = directory.ProcPath(name);
        fixed (byte* p = path)
        {
            nint size = FsNative.Llistxattr(p, null, 0);
            if (size <= 0)
            {
                return attributes;
            }

            byte[] list = new byte[size];
            fixed (byte* l = list)
            {
                size = FsNative.Llistxattr(p, l, (nuint)list.Length);
            }

            if (size < 0)
            {
                throw new IOException($"{ByteNames.Display(name)}: listxattr: {Errno.Message(Errno.Last)}.");
            }

            foreach (Range range in list.AsSpan(0, (int)size).Split((byte)0))
            {
                if (range.GetOffsetAndLength((int)size).Length == 0)
                {
                    continue;
                }

                byte[] attribute = FsNative.Z(list.AsSpan(0, (int)size)[range]);
                byte[]? value = Get(p, attribute, name);
                if (value is not null)
                {
                    attributes[attribute[..^1]] = value;
                }
            }
        }

        return attributes;
    }

    private static byte[]? Get(byte* path, byte[] attribute, ReadOnlySpan<byte> name)
    {
        fixed (byte* a = attribute)
        {
            while (true)
            {
                nint length = FsNative.Lgetxattr(path, a, null, 0);
                if (length < 0)
                {
                    int errno = Errno.Last;
                    return errno == Errno.ENODATA
                        ? null // removed between the listing and now
                        : throw new IOException($"{ByteNames.Display(name)}: getxattr {ByteNames.Display(attribute.AsSpan(0, attribute.Length - 1))}: {Errno.Message(errno)}.");
                }

                byte[] value = new byte[length];
                fixed (byte* v = value)
                {
                    nint read = FsNative.Lgetxattr(path, a, v, (nuint)value.Length);
                    if (read >= 0)
                    {
                        return value[..(int)read];
                    }
                }

                // ERANGE (34): it grew between the two calls; ask again. Anything else ends the loop.
                int error = Errno.Last;
                if (error != 34)
                {
                    return error == Errno.ENODATA ? null
                        : throw new IOException($"{ByteNames.Display(name)}: getxattr: {Errno.Message(error)}.");
                }
            }
        }
    }
}
