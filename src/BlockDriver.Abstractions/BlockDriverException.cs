namespace BlockDriver.Abstractions;

/// <summary>The one exception type BlockDriver code throws for expected failures; <see cref="Kind"/> says
/// which, so that every edge can translate it once.</summary>
public class BlockDriverException : Exception
{
    /// <summary>Creates an exception of the given kind.</summary>
    public BlockDriverException(ErrorKind kind, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Kind = kind;
    }

    /// <summary>Parameterless constructor for serializers; <see cref="Kind"/> is InvalidArgument.</summary>
    public BlockDriverException()
        : this(ErrorKind.InvalidArgument, "BlockDriver error")
    {
    }

    /// <summary>Creates an InvalidArgument exception.</summary>
    public BlockDriverException(string message)
        : this(ErrorKind.InvalidArgument, message)
    {
    }

    /// <summary>Creates an InvalidArgument exception with a cause.</summary>
    public BlockDriverException(string message, Exception innerException)
        : this(ErrorKind.InvalidArgument, message, innerException)
    {
    }

    /// <summary>The category of the failure.</summary>
    public ErrorKind Kind { get; }
}
