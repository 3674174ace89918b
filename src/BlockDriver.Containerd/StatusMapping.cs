using BlockDriver.Abstractions;
using Grpc.Core;

namespace BlockDriver.Containerd;

/// <summary>The one place errors become gRPC statuses, with the codes containerd's errdefs turn back into its error
/// classes (NotFound, AlreadyExists, FailedPrecondition, InvalidArgument, Unavailable).</summary>
internal static class StatusMapping
{
    public static StatusCode ToStatusCode(ErrorKind kind) => kind switch
    {
        ErrorKind.NotFound => StatusCode.NotFound,
        ErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        ErrorKind.InvalidArgument => StatusCode.InvalidArgument,

        // Has children, still mounted, committing a view, Mounts of a committed snapshot: containerd's
        // ErrFailedPrecondition for each of these in its own snapshotters (snapshots/storage/bolt.go).
        ErrorKind.InUse or ErrorKind.ReadOnly => StatusCode.FailedPrecondition,
        ErrorKind.NoSpace => StatusCode.ResourceExhausted,
        ErrorKind.Unavailable => StatusCode.Unavailable,
        _ => StatusCode.Unknown,
    };

    public static RpcException ToRpcException(BlockDriverException exception) =>
        new(new Status(ToStatusCode(exception.Kind), exception.Message));
}
