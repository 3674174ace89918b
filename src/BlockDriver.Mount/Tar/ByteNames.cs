using System.Text;

namespace BlockDriver.Mount.Tar;

/// <summary>File names and paths as the kernel and tar keep them: bytes, not necessarily UTF-8. Two different byte
/// names are two different files, whatever they look like once decoded; a string form is for messages and for
/// interfaces that can only carry text (where it is lossy: invalid UTF-8 becomes U+FFFD).</summary>
public static class ByteNames
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Ordinal (byte-wise) equality and order of byte names.</summary>
    public static ByteNameComparer Comparer => ByteNameComparer.Instance;

    /// <summary>The bytes of a text name (UTF-8).</summary>
    public static byte[] FromString(string name) => Encoding.UTF8.GetBytes(name);

    /// <summary>The name decoded as UTF-8, invalid sequences replaced by U+FFFD (lossy: for display only).</summary>
    public static string Display(ReadOnlySpan<byte> name) => Encoding.UTF8.GetString(name);

    /// <summary>Whether <paramref name="name"/> is valid UTF-8, so that <see cref="Display"/> is faithful.</summary>
    public static bool IsUtf8(ReadOnlySpan<byte> name)
    {
        try
        {
            _ = StrictUtf8.GetCharCount(name);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    /// <summary><paramref name="directory"/> + "/" + <paramref name="name"/> ("" as directory: the name alone).</summary>
    public static byte[] Join(ReadOnlySpan<byte> directory, ReadOnlySpan<byte> name)
    {
        if (directory.Length == 0)
        {
            return name.ToArray();
        }

        byte[] path = new byte[directory.Length + 1 + name.Length];
        directory.CopyTo(path);
        path[directory.Length] = (byte)'/';
        name.CopyTo(path.AsSpan(directory.Length + 1));
        return path;
    }

    /// <summary>Splits a path into its directory ("" at the top) and its last name.</summary>
    public static (byte[] Directory, byte[] Name) Split(ReadOnlySpan<byte> path)
    {
        int slash = path.LastIndexOf((byte)'/');
        return slash < 0 ? ([], path.ToArray()) : (path[..slash].ToArray(), path[(slash + 1)..].ToArray());
    }
}
