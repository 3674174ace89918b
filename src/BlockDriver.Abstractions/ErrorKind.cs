namespace BlockDriver.Abstractions;

/// <summary>What went wrong, in terms every protocol edge can translate (NBD errno, FUSE errno, gRPC status,
/// the graphdriver's error string, CLI exit codes).</summary>
public enum ErrorKind
{
    /// <summary>A file, layer or id does not exist.</summary>
    NotFound,

    /// <summary>The thing to create exists already.</summary>
    AlreadyExists,

    /// <summary>Held by another user (open for writing, mounted, has children).</summary>
    InUse,

    /// <summary>The request itself is wrong.</summary>
    InvalidArgument,

    /// <summary>A write was sent to something read-only or sealed.</summary>
    ReadOnly,

    /// <summary>Out of space.</summary>
    NoSpace,

    /// <summary>Stored data is malformed or inconsistent.</summary>
    Corrupt,

    /// <summary>A resource is not available here (missing tool, kernel feature).</summary>
    Unavailable,
}
