namespace BlockDriver.Nbd;

/// <summary>The error values NBD puts on the wire (proto.md "Error values"); never host errno numbers.</summary>
public enum NbdErrno : uint
{
    /// <summary>Success.</summary>
    None = 0,

    /// <summary>NBD_EPERM: a modification of a read-only export.</summary>
    Perm = 1,

    /// <summary>NBD_EIO: the backing device failed.</summary>
    Io = 5,

    /// <summary>NBD_ENOMEM.</summary>
    NoMem = 12,

    /// <summary>NBD_EINVAL: a bad range, misaligned request, unknown command or flag.</summary>
    Invalid = 22,

    /// <summary>NBD_ENOSPC: a write past the end, or no space left.</summary>
    NoSpace = 28,

    /// <summary>NBD_EOVERFLOW: a DF read too large to send in one chunk.</summary>
    Overflow = 75,

    /// <summary>NBD_ENOTSUP: a FAST_ZERO write-zeroes that would not be fast.</summary>
    NotSupported = 95,

    /// <summary>NBD_ESHUTDOWN: the server is shutting down.</summary>
    Shutdown = 108,
}
