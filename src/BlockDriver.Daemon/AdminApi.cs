using System.Net;
using System.Text.Json;
using BlockDriver.Abstractions;
using BlockDriver.Mount.Tar;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BlockDriver.Daemon;

/// <summary>
/// The admin API (HTTP/JSON on STORE/run/admin.sock), what the CLI's <c>mount</c>, <c>umount</c> and <c>ps</c> use:
/// <list type="bullet">
/// <item><c>GET /v1/status</c> → 200 <see cref="DaemonStatus"/></item>
/// <item><c>GET /v1/mounts</c> → 200 [<see cref="MountJson"/>], oldest first</item>
/// <item><c>POST /v1/mounts</c> <see cref="MountRequest"/> → 200 <see cref="MountJson"/> (the mount as it is now; a
/// repeated request counts one more reference)</item>
/// <item><c>DELETE /v1/mounts?directory=DIR</c> → 200 <c>{"references": N}</c> left (0: unmounted)</item>
/// <item><c>POST /v1/base-filesystem?capacity=BYTES</c> → 200 <see cref="LayerContentJson"/> naming the store's base
/// file system layer of that size, made now if missing</item>
/// <item><c>POST /v1/layers/ID/apply</c> with a layer tar as the body → 200 <see cref="LayerContentJson"/></item>
/// <item><c>GET /v1/layers/ID/changes</c> → 200 [<see cref="ChangeJson"/>], parents before children; a path that
/// is not UTF-8 carries its exact bytes in <c>pathBase64</c> beside the lossy <c>path</c></item>
/// <item><c>GET /v1/layers/ID/diff</c> → 200 and the layer tar of ID's differences from its parent, streamed; a
/// failure after the first byte aborts the connection, so a client never takes a truncated tar for a whole one</item>
/// </list>
/// Failures are <c>{"error": "..."}</c> with the status <see cref="AdminError"/> gives. A bad request fails that
/// request only.
/// </summary>
public sealed class AdminApi(StoreService store, NbdService nbd, IOptions<DaemonOptions> options, ILogger<AdminApi> logger)
{
    private const string LayersPrefix = "/v1/layers/";

    /// <summary>Handles one request.</summary>
    public async Task HandleAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        HttpRequest request = context.Request;
        string path = request.Path.Value ?? "/";
        try
        {
            switch (path)
            {
                case "/v1/status" when HttpMethods.IsGet(request.Method):
                    await WriteAsync(context, Status(), AdminJsonContext.Default.DaemonStatus).ConfigureAwait(false);
                    break;
                case "/v1/mounts" when HttpMethods.IsGet(request.Method):
                    await WriteAsync(context, store.List().ToList(), AdminJsonContext.Default.ListMountJson).ConfigureAwait(false);
                    break;
                case "/v1/mounts" when HttpMethods.IsPost(request.Method):
                    MountRequest body = await JsonSerializer.DeserializeAsync(request.Body, AdminJsonContext.Default.MountRequest, context.RequestAborted).ConfigureAwait(false)
                        ?? throw new BlockDriverException(ErrorKind.InvalidArgument, "the request body is empty.");
                    string layer = body.Layer is { Length: > 0 } l ? l : throw new BlockDriverException(ErrorKind.InvalidArgument, "the request names no layer.");
                    string directory = body.Directory is { Length: > 0 } d ? d : throw new BlockDriverException(ErrorKind.InvalidArgument, "the request names no directory.");

                    // Not the request's token: a client that goes away must not leave a mount half made.
                    MountJson mount = await store.MountAsync(layer, directory, body.ReadOnly, body.Privileges, CancellationToken.None).ConfigureAwait(false);
                    await WriteAsync(context, mount, AdminJsonContext.Default.MountJson).ConfigureAwait(false);
                    break;
                case "/v1/mounts" when HttpMethods.IsDelete(request.Method):
                    string target = request.Query["directory"].ToString() is { Length: > 0 } t
                        ? t
                        : throw new BlockDriverException(ErrorKind.InvalidArgument, "the request names no directory (?directory=DIR).");
                    int left = await store.UnmountAsync(target, CancellationToken.None).ConfigureAwait(false);
                    context.Response.ContentType = "application/json";
                    await context.Response.WriteAsync($"{{\"references\":{left}}}", context.RequestAborted).ConfigureAwait(false);
                    break;
                case "/v1/base-filesystem" when HttpMethods.IsPost(request.Method):
                    long capacity = long.TryParse(request.Query["capacity"], out long c) && c > 0
                        ? c
                        : throw new BlockDriverException(ErrorKind.InvalidArgument, "the request names no capacity (?capacity=BYTES).");
                    string baseLayer = await store.EnsureBaseFilesystemAsync(capacity, CancellationToken.None).ConfigureAwait(false);
                    await WriteAsync(context, new LayerContentJson(baseLayer, 0), AdminJsonContext.Default.LayerContentJson).ConfigureAwait(false);
                    break;
                case not null when path.StartsWith(LayersPrefix, StringComparison.Ordinal):
                    if (!await HandleLayerAsync(context, path[LayersPrefix.Length..]).ConfigureAwait(false))
                    {
                        return;
                    }

                    break;
                case "/v1/status" or "/v1/mounts" or "/v1/base-filesystem":
                    await FailAsync(context, HttpStatusCode.MethodNotAllowed, $"{request.Method} is not allowed on {path}.").ConfigureAwait(false);
                    return;
                default:
                    await FailAsync(context, HttpStatusCode.NotFound, $"no such endpoint: {request.Method} {path}.").ConfigureAwait(false);
                    return;
            }

            Log.Request(logger, request.Method, path, context.Response.StatusCode);
        }
        catch (Exception ex) when (!context.Response.HasStarted)
        {
            (HttpStatusCode status, string message) = AdminError.Translate(ex);
            await FailAsync(context, status, message).ConfigureAwait(false);
        }
    }

    // /v1/layers/ID/VERB: false when the request was answered with an error already.
    private async Task<bool> HandleLayerAsync(HttpContext context, string rest)
    {
        HttpRequest request = context.Request;
        string[] parts = rest.Split('/');
        if (parts.Length != 2 || parts[0].Length == 0)
        {
            await FailAsync(context, HttpStatusCode.NotFound, $"no such endpoint: {request.Method} {request.Path}.").ConfigureAwait(false);
            return false;
        }

        string id = parts[0];
        switch (parts[1])
        {
            case "apply" when HttpMethods.IsPost(request.Method):
                // Cancelled with the request: a client that goes away mid-tar leaves the layer unmounted, with the
                // entries applied so far.
                long bytes = await store.ApplyTarAsync(id, request.Body, context.RequestAborted).ConfigureAwait(false);
                await WriteAsync(context, new LayerContentJson(id, bytes), AdminJsonContext.Default.LayerContentJson).ConfigureAwait(false);
                return true;
            case "changes" when HttpMethods.IsGet(request.Method):
                IReadOnlyList<LayerChange> changes = await store.ChangesAsync(id, context.RequestAborted).ConfigureAwait(false);
                await WriteAsync(context, changes.Select(ToJson).ToList(), AdminJsonContext.Default.ListChangeJson).ConfigureAwait(false);
                return true;
            case "diff" when HttpMethods.IsGet(request.Method):
                _ = store.Store.Get(id);
                context.Response.StatusCode = StatusCodes.Status200OK;
                context.Response.ContentType = "application/x-tar";
                try
                {
                    await store.DiffAsync(id, context.Response.Body, context.RequestAborted).ConfigureAwait(false);
                }
                catch (Exception ex) when (context.Response.HasStarted)
                {
                    Log.RequestFailed(logger, request.Method, request.Path.Value ?? "/", StatusCodes.Status200OK, AdminError.Translate(ex).Message);
                    context.Abort();
                }

                return true;
            case "apply" or "changes" or "diff":
                await FailAsync(context, HttpStatusCode.MethodNotAllowed, $"{request.Method} is not allowed on {request.Path}.").ConfigureAwait(false);
                return false;
            default:
                await FailAsync(context, HttpStatusCode.NotFound, $"no such endpoint: {request.Method} {request.Path}.").ConfigureAwait(false);
                return false;
        }
    }

    // A path that is not UTF-8 also goes as base64 (ChangeJson.PathBase64): JSON strings cannot hold its bytes.
    private static ChangeJson ToJson(LayerChange change) =>
        new(change.Kind switch { ChangeKind.Added => "added", ChangeKind.Modified => "modified", _ => "deleted" }, change.Path,
            change.IsUtf8 ? null : Convert.ToBase64String(change.RawPath));

    private DaemonStatus Status() =>
        new(Environment.ProcessId, store.Root, store.StartedAt, options.Value.Remount, nbd.SocketPath,
            nbd.SocketPath is null ? [] : [.. options.Value.Nbd.Exports], store.Recovered);

    private async Task FailAsync(HttpContext context, HttpStatusCode status, string message)
    {
        Log.RequestFailed(logger, context.Request.Method, context.Request.Path.Value ?? "/", (int)status, message);
        await AdminError.WriteAsync(context, status, message).ConfigureAwait(false);
    }

    private static async Task WriteAsync<T>(HttpContext context, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(context.Response.Body, value, type, context.RequestAborted).ConfigureAwait(false);
    }
}
