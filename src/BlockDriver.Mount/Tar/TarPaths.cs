using BlockDriver.Abstractions;

namespace BlockDriver.Mount.Tar;

/// <summary>Names inside a layer tar, made relative to the layer root.</summary>
internal static class TarPaths
{
    /// <summary>The whiteout prefix (OCI image spec, "Whiteouts"): <c>.wh.NAME</c> deletes NAME.</summary>
    public const string WhiteoutPrefix = ".wh.";

    /// <summary>The opaque-directory marker: everything the lower layers had in this directory is hidden.</summary>
    public const string OpaqueMarker = ".wh..wh..opq";

    /// <summary>Cleans a tar name into a root-relative path ("" for the root itself): a leading "/" and "./" are
    /// dropped, "." components removed, ".." resolved. A name that climbs out of the root, or holds a NUL, is
    /// refused, as Docker refuses it ("breakout").</summary>
    /// <exception cref="BlockDriverException">InvalidArgument.</exception>
    public static string Clean(string name)
    {
        if (name.Contains('\0', StringComparison.Ordinal))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, "layer tar: an entry name holds a NUL byte.");
        }

        var parts = new List<string>();
        foreach (string part in name.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count == 0)
                {
                    throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer tar: \"{name}\" points outside the layer.");
                }

                parts.RemoveAt(parts.Count - 1);
                continue;
            }

            parts.Add(part);
        }

        return string.Join('/', parts);
    }

    /// <summary>Splits a cleaned path into its directory ("" at the top) and its last name.</summary>
    public static (string Directory, string Name) Split(string path)
    {
        int slash = path.LastIndexOf('/');
        return slash < 0 ? ("", path) : (path[..slash], path[(slash + 1)..]);
    }
}
