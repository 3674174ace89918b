namespace BlockDriver.Mount.Tar;

/// <summary>One changed path ("/etc/hosts", rooted like <c>docker diff</c> prints it).</summary>
/// <param name="Kind">Added, modified or deleted.</param>
/// <param name="Path">The path, starting with "/".</param>
public sealed record LayerChange(ChangeKind Kind, string Path)
{
    /// <summary>The <c>docker diff</c> line: "A /path", "C /path" or "D /path".</summary>
    public override string ToString() => $"{Kind switch { ChangeKind.Added => 'A', ChangeKind.Modified => 'C', _ => 'D' }} {Path}";
}
