using BlockDriver.Mount.Tar;

namespace BlockDriver.Docker;

/// <summary>Docker's listing rule for Changes on top of <see cref="LayerChanges"/>: moby's naive differ
/// (pkg/archive/changes.go, <c>addChanges</c>) lists every directory that has changes inside it as modified, even
/// when the directory itself is unchanged (editing /etc/motd in place shows "C /etc" and "C /etc/motd"), except the
/// root; <c>docker diff</c> on Docker's own drivers shows those lines, so the plugin does too.</summary>
public static class DockerChanges
{
    /// <summary><paramref name="changes"/> (parents before children) with each missing ancestor directory inserted as
    /// modified right before its first descendant.</summary>
    public static IReadOnlyList<LayerChange> WithParentDirectories(IReadOnlyList<LayerChange> changes)
    {
        ArgumentNullException.ThrowIfNull(changes);
        // Paths compared as bytes: two names that decode to the same text (Latin-1 "caf\xe9" and a "caf\xef\xbf\xbd")
        // are different directories.
        var listed = new HashSet<byte[]>(changes.Select(c => c.RawPath), ByteNames.Comparer);
        var result = new List<LayerChange>(changes.Count);
        var missing = new List<byte[]>();
        foreach (LayerChange change in changes)
        {
            missing.Clear();
            for (byte[] dir = ParentOf(change.RawPath); dir.Length > 1; dir = ParentOf(dir))
            {
                if (listed.Add(dir))
                {
                    missing.Add(dir);
                }
            }

            for (int i = missing.Count - 1; i >= 0; i--)
            {
                result.Add(new LayerChange(ChangeKind.Modified, missing[i]));
            }

            result.Add(change);
        }

        return result;
    }

    // "/a/b" → "/a", "/a" → "/".
    private static byte[] ParentOf(byte[] path)
    {
        int slash = path.AsSpan().LastIndexOf((byte)'/');
        return slash <= 0 ? "/"u8.ToArray() : path[..slash];
    }
}
