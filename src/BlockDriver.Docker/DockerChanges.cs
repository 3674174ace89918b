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
        var listed = new HashSet<string>(changes.Select(c => c.Path), StringComparer.Ordinal);
        var result = new List<LayerChange>(changes.Count);
        var missing = new List<string>();
        foreach (LayerChange change in changes)
        {
            missing.Clear();
            for (string dir = ParentOf(change.Path); dir != "/"; dir = ParentOf(dir))
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
    private static string ParentOf(string path)
    {
        int slash = path.LastIndexOf('/');
        return slash <= 0 ? "/" : path[..slash];
    }
}
