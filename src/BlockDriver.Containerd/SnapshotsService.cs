using BlockDriver.Abstractions;
using BlockDriver.Containerd.Api;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace BlockDriver.Containerd;

/// <summary>
/// The <c>containerd.services.snapshots.v1.Snapshots</c> gRPC service: translates each call onto
/// <see cref="BlockSnapshotter"/> and its errors into statuses (<see cref="StatusMapping"/>). A failed call fails that
/// call only.
/// </summary>
/// <remarks>Requests name their snapshotter (the <c>proxy_plugins</c> key); an empty name means
/// <see cref="DefaultSnapshotter"/>. Each name has its own key space.</remarks>
public sealed class SnapshotsService(BlockSnapshotter snapshotter, ILogger<SnapshotsService> logger) : Snapshots.SnapshotsBase
{
    /// <summary>The snapshotter name for requests that give none.</summary>
    public const string DefaultSnapshotter = "blockdriver";

    // containerd's own helper (contrib/snapshotservice) sends 100 Infos per List message.
    private const int ListBatch = 100;

    /// <inheritdoc/>
    public override Task<PrepareSnapshotResponse> Prepare(PrepareSnapshotRequest request, ServerCallContext context) =>
        CallAsync(nameof(Prepare), context, async ct =>
        {
            var response = new PrepareSnapshotResponse();
            response.Mounts.AddRange(ToWire(await snapshotter.PrepareAsync(Name(request.Snapshotter), request.Key, request.Parent, request.Labels, ct).ConfigureAwait(false)));
            return response;
        });

    /// <inheritdoc/>
    public override Task<ViewSnapshotResponse> View(ViewSnapshotRequest request, ServerCallContext context) =>
        CallAsync(nameof(View), context, async ct =>
        {
            var response = new ViewSnapshotResponse();
            response.Mounts.AddRange(ToWire(await snapshotter.ViewAsync(Name(request.Snapshotter), request.Key, request.Parent, request.Labels, ct).ConfigureAwait(false)));
            return response;
        });

    /// <inheritdoc/>
    public override Task<MountsResponse> Mounts(MountsRequest request, ServerCallContext context) =>
        CallAsync(nameof(Mounts), context, async ct =>
        {
            var response = new MountsResponse();
            response.Mounts.AddRange(ToWire(await snapshotter.MountsAsync(Name(request.Snapshotter), request.Key, ct).ConfigureAwait(false)));
            return response;
        });

    /// <inheritdoc/>
    public override Task<Empty> Commit(CommitSnapshotRequest request, ServerCallContext context) =>
        CallAsync(nameof(Commit), context, async ct =>
        {
            await snapshotter.CommitAsync(Name(request.Snapshotter), request.Name, request.Key, request.Labels, ct).ConfigureAwait(false);
            return new Empty();
        });

    /// <inheritdoc/>
    public override Task<Empty> Remove(RemoveSnapshotRequest request, ServerCallContext context) =>
        CallAsync(nameof(Remove), context, async ct =>
        {
            await snapshotter.RemoveAsync(Name(request.Snapshotter), request.Key, ct).ConfigureAwait(false);
            return new Empty();
        });

    /// <inheritdoc/>
    public override Task<StatSnapshotResponse> Stat(StatSnapshotRequest request, ServerCallContext context) =>
        CallAsync(nameof(Stat), context, _ => Task.FromResult(new StatSnapshotResponse { Info = ToWire(snapshotter.Stat(Name(request.Snapshotter), request.Key)) }));

    /// <inheritdoc/>
    public override Task<UpdateSnapshotResponse> Update(UpdateSnapshotRequest request, ServerCallContext context) =>
        CallAsync(nameof(Update), context, async ct =>
        {
            Info info = request.Info ?? throw new BlockDriverException(ErrorKind.InvalidArgument, "Update needs info.");
            IReadOnlyList<string> paths = request.UpdateMask?.Paths ?? (IReadOnlyList<string>)[];
            SnapshotInfo updated = await snapshotter.UpdateAsync(Name(request.Snapshotter), info.Name, info.Labels, paths, ct).ConfigureAwait(false);
            return new UpdateSnapshotResponse { Info = ToWire(updated) };
        });

    /// <inheritdoc/>
    public override Task List(ListSnapshotsRequest request, IServerStreamWriter<ListSnapshotsResponse> responseStream, ServerCallContext context) =>
        CallAsync(nameof(List), context, async ct =>
        {
            SnapshotFilter filter = SnapshotFilter.Parse(request.Filters);
            IReadOnlyList<SnapshotInfo> infos = snapshotter.List(Name(request.Snapshotter), filter);
            foreach (SnapshotInfo[] batch in infos.Chunk(ListBatch))
            {
                var response = new ListSnapshotsResponse();
                response.Info.AddRange(batch.Select(ToWire));
                await responseStream.WriteAsync(response, ct).ConfigureAwait(false);
            }

            return true;
        });

    /// <inheritdoc/>
    public override Task<UsageResponse> Usage(UsageRequest request, ServerCallContext context) =>
        CallAsync(nameof(Usage), context, async ct =>
        {
            SnapshotUsage usage = await snapshotter.UsageAsync(Name(request.Snapshotter), request.Key, ct).ConfigureAwait(false);
            return new UsageResponse { Size = usage.Size, Inodes = usage.Inodes };
        });

    /// <inheritdoc/>
    public override Task<Empty> Cleanup(CleanupRequest request, ServerCallContext context) =>
        CallAsync(nameof(Cleanup), context, async ct =>
        {
            await snapshotter.CleanupAsync(Name(request.Snapshotter), ct).ConfigureAwait(false);
            return new Empty();
        });

    internal static Info ToWire(SnapshotInfo info)
    {
        var wire = new Info
        {
            Name = info.Name,
            Parent = info.Parent,
            Kind = info.Kind switch
            {
                SnapshotKind.View => Kind.View,
                SnapshotKind.Active => Kind.Active,
                _ => Kind.Committed,
            },
            CreatedAt = Timestamp.FromDateTimeOffset(info.Created),
            UpdatedAt = Timestamp.FromDateTimeOffset(info.Updated),
        };
        foreach ((string key, string value) in info.Labels)
        {
            wire.Labels[key] = value;
        }

        return wire;
    }

    private static IEnumerable<Api.Mount> ToWire(IReadOnlyList<SnapshotMount> mounts) => mounts.Select(m =>
    {
        var mount = new Api.Mount { Type = m.Type, Source = m.Source };
        mount.Options.AddRange(m.Options);
        return mount;
    });

    private static string Name(string snapshotter) => snapshotter.Length > 0 ? snapshotter : DefaultSnapshotter;

    private async Task<T> CallAsync<T>(string method, ServerCallContext context, Func<CancellationToken, Task<T>> call)
    {
        try
        {
            return await call(context.CancellationToken).ConfigureAwait(false);
        }
        catch (BlockDriverException ex)
        {
            RpcException status = StatusMapping.ToRpcException(ex);
            Log.RequestFailed(logger, method, status.StatusCode.ToString(), ex.Message);
            throw status;
        }
        catch (Exception ex) when (ex is not (RpcException or OperationCanceledException))
        {
            // An unexpected failure fails this call with UNKNOWN and its message; the next call goes on.
            Log.RequestCrashed(logger, ex, method);
            throw new RpcException(new Status(StatusCode.Unknown, $"{method}: {ex.Message}"));
        }
    }
}
