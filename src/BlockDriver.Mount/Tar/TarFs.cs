using System.Text;

namespace BlockDriver.Mount.Tar;

/// <summary>Reading link targets and extended attributes of a directory entry without following it.</summary>
internal static unsafe class TarFs
{
    public static string ReadLink(DirectoryHandle directory, string name)
    {
        byte* buffer = stackalloc byte[4096];
        nint length = FsNative.Readlinkat(directory.Fd, name, buffer, 4096);
        return length < 0
            ? throw new IOException($"{name}: readlink: {FsNative.Describe(FsNative.LastError)}.")
            : Encoding.UTF8.GetString(buffer, (int)length);
    }

    public static Dictionary<string, byte[]> ExtendedAttributes(DirectoryHandle directory, string name)
    {
        var attributes = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        string path = directory.ProcPath(name);
        nint size = FsNative.Llistxattr(path, null, 0);
        if (size <= 0)
        {
            return attributes;
        }

        byte[] list = new byte[size];
        fixed (byte* p = list)
        {
            size = FsNative.Llistxattr(path, p, (nuint)list.Length);
        }

        foreach (string attribute in Encoding.UTF8.GetString(list, 0, (int)Math.Max(size, 0)).Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            nint length = FsNative.Lgetxattr(path, attribute, null, 0);
            if (length < 0)
            {
                int errno = FsNative.LastError;
                if (errno == FsNative.ENODATA)
                {
                    continue; // removed between the listing and now
                }

                throw new IOException($"{name}: getxattr {attribute}: {FsNative.Describe(errno)}.");
            }

            byte[] value = new byte[length];
            fixed (byte* v = value)
            {
                length = FsNative.Lgetxattr(path, attribute, v, (nuint)value.Length);
            }

            if (length >= 0)
            {
                attributes[attribute] = value[..(int)length];
            }
        }

        return attributes;
    }
}
