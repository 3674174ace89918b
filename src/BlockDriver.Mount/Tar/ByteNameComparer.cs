namespace BlockDriver.Mount.Tar;

/// <summary>Byte names compared byte by byte (the order <c>LC_ALL=C ls</c> gives).</summary>
public sealed class ByteNameComparer : IEqualityComparer<byte[]>, IComparer<byte[]>
{
    /// <summary>The one instance.</summary>
    public static readonly ByteNameComparer Instance = new();

    private ByteNameComparer()
    {
    }

    /// <inheritdoc/>
    public bool Equals(byte[]? x, byte[]? y) => x is null ? y is null : y is not null && x.AsSpan().SequenceEqual(y);

    /// <inheritdoc/>
    public int GetHashCode(byte[] obj)
    {
        ArgumentNullException.ThrowIfNull(obj);
        var hash = new HashCode();
        hash.AddBytes(obj);
        return hash.ToHashCode();
    }

    /// <inheritdoc/>
    public int Compare(byte[]? x, byte[]? y) => x is null ? (y is null ? 0 : -1) : y is null ? 1 : x.AsSpan().SequenceCompareTo(y);
}
