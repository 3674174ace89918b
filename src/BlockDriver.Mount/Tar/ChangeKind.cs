namespace BlockDriver.Mount.Tar;

/// <summary>How a path differs between a layer and its parent, as <c>docker diff</c> prints it.</summary>
public enum ChangeKind
{
    /// <summary>A: only in the layer.</summary>
    Added,

    /// <summary>C: in both, with different type, content size, owner, mode, times, link target or xattrs.</summary>
    Modified,

    /// <summary>D: only in the parent.</summary>
    Deleted,
}
