namespace BlockDriver.Nbd;

/// <summary>A request the transmission phase refuses before touching the device: the client gets
/// <see cref="Errno"/> and <see cref="Exception.Message"/>, and the connection goes on.</summary>
internal sealed class NbdRequestException : Exception
{
    public NbdRequestException(NbdErrno errno, string message)
        : base(message)
    {
        Errno = errno;
    }

    public NbdRequestException()
        : this(NbdErrno.Invalid, "Invalid request.")
    {
    }

    public NbdRequestException(string message)
        : this(NbdErrno.Invalid, message)
    {
    }

    public NbdRequestException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errno = NbdErrno.Invalid;
    }

    public NbdErrno Errno { get; }
}
