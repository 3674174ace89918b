namespace BlockDriver.Mount.Tar;

/// <summary>One changed path ("/etc/hosts", rooted like <c>docker diff</c> prints it).</summary>
/// <param name="Kind">Added, modified or deleted.</param>
/// <param name="Path">The path, starting with "/", as text: decoded from <see cref="RawPath"/> as UTF-8, so lossy
/// (U+FFFD) for a name that is not UTF-8 (<see cref="IsUtf8"/> false).</param>
public sealed record LayerChange(ChangeKind Kind, string Path)
{
    /// <summary>A change of a path given as bytes, as the file system has it.</summary>
    public LayerChange(ChangeKind kind, byte[] rawPath)
        : this(kind, ByteNames.Display(rawPath ?? throw new ArgumentNullException(nameof(rawPath))))
    {
        RawPath = rawPath;
    }

    /// <summary>The path as bytes, exactly as the file system names it (starting with "/"). Two changes are equal
    /// when their kinds and raw paths are.</summary>
    public byte[] RawPath { get; init; } = ByteNames.FromString(Path);

    /// <summary>Whether <see cref="Path"/> is a faithful text form of <see cref="RawPath"/>.</summary>
    public bool IsUtf8 => ByteNames.IsUtf8(RawPath);

    /// <summary>The <c>docker diff</c> line: "A /path", "C /path" or "D /path" (lossy text; see
    /// <see cref="Letter"/> and <see cref="RawPath"/> to print the bytes).</summary>
    public override string ToString() => $"{Letter} {Path}";

    /// <summary>'A', 'C' or 'D'.</summary>
    public char Letter => Kind switch { ChangeKind.Added => 'A', ChangeKind.Modified => 'C', _ => 'D' };

    /// <inheritdoc/>
    public bool Equals(LayerChange? other) =>
        other is not null && Kind == other.Kind && RawPath.AsSpan().SequenceEqual(other.RawPath);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Kind, ByteNames.Comparer.GetHashCode(RawPath));
}
