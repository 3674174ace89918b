using BlockDriver.Abstractions;

namespace BlockDriver.Mount.Tar;

/// <summary>Names inside a layer tar (bytes), made relative to the layer root.</summary>
internal static class TarPaths
{
    /// <summary>How many directory levels a layer's tree may have below its root: a walk deeper than this (changes,
    /// diff, size, removal) and a tar entry named deeper are refused with InvalidArgument, instead of exhausting
    /// descriptors or the kernel's path length. Each level holds one open directory per tree being walked.</summary>
    public const int MaxDepth = 4096;

    /// <summary>The longest root-relative path a walk (changes, diff, size) accepts, in bytes: PATH_MAX less its NUL,
    /// the longest path Docker's own path-based walks can stat. It bounds the memory of a walk's list of changes
    /// (a path per entry), which depth alone does not: 4,096 levels of 255-byte names would be paths of 1 MiB.</summary>
    public const int MaxPathLength = 4095;

    /// <summary>NAME_MAX: the longest name of one path component ext4 (and Linux) takes, in bytes.</summary>
    public const int MaxNameLength = 255;

    /// <summary>The whiteout prefix (OCI image spec, "Whiteouts"): <c>.wh.NAME</c> deletes NAME.</summary>
    public static ReadOnlySpan<byte> WhiteoutPrefix => ".wh."u8;

    /// <summary>The opaque-directory marker: everything the lower layers had in this directory is hidden.</summary>
    public static ReadOnlySpan<byte> OpaqueMarker => ".wh..wh..opq"u8;

    /// <summary>Cleans a tar name into a root-relative path ("" for the root itself): a leading "/" and "./" are
    /// dropped, "." components removed, ".." resolved. A name that climbs out of the root, holds a NUL or is deeper
    /// than <see cref="MaxDepth"/> is refused, as Docker refuses it ("breakout").</summary>
    /// <exception cref="BlockDriverException">InvalidArgument.</exception>
    public static byte[] Clean(ReadOnlySpan<byte> name)
    {
        if (name.Contains((byte)0))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, "layer tar: an entry name holds a NUL byte.");
        }

        var parts = new List<Range>();
        int start = 0;
        for (int i = 0; i <= name.Length; i++)
        {
            if (i < name.Length && name[i] != '/')
            {
                continue;
            }

            ReadOnlySpan<byte> part = name[start..i];
            Range range = start..i;
            start = i + 1;
            if (part.Length == 0 || part.SequenceEqual("."u8))
            {
                continue;
            }

            if (part.SequenceEqual(".."u8))
            {
                if (parts.Count == 0)
                {
                    throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer tar: \"{ByteNames.Display(name)}\" points outside the layer.");
                }

                parts.RemoveAt(parts.Count - 1);
                continue;
            }

            if (part.Length > MaxNameLength)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument,
                    $"layer tar: \"{ByteNames.Display(name[..Math.Min(name.Length, 300)])}\" has a name of {part.Length} bytes (at most {MaxNameLength}).");
            }

            parts.Add(range);
            if (parts.Count > MaxDepth)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument,
                    $"layer tar: \"{ByteNames.Display(name[..Math.Min(name.Length, 64)])}...\" is more than {MaxDepth} directory levels deep.");
            }
        }

        var path = new List<byte>(name.Length);
        foreach (Range part in parts)
        {
            if (path.Count > 0)
            {
                path.Add((byte)'/');
            }

            path.AddRange(name[part]);
        }

        return [.. path];
    }

    /// <summary>Splits a cleaned path into its directory ("" at the top) and its last name.</summary>
    public static (byte[] Directory, byte[] Name) Split(ReadOnlySpan<byte> path) => ByteNames.Split(path);
}
