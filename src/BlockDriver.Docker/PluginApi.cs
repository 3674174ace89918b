using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using BlockDriver.Abstractions;
using BlockDriver.Docker.Json;
using BlockDriver.Mount.Tar;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.Logging;

namespace BlockDriver.Docker;

/// <summary>
/// The graphdriver plugin API on the wire (HTTP/1.1 on the plugin's unix socket; reference §4, §5): every call is
/// <c>POST /Plugin.Activate</c> or <c>POST /GraphDriver.METHOD</c> with a JSON body (ApplyDiff: <c>?id=&amp;parent=</c>
/// and a raw tar), answered with 200 and JSON (Diff: 200 and a raw tar) or an error as <see cref="PluginError"/>
/// writes it. Each call is logged at Debug, each failure at Warning. A bad request fails that request only.
/// </summary>
public sealed class PluginApi(GraphDriver driver, ILogger<PluginApi> logger)
{
    /// <summary>The content type of the answers (what go-plugins-helpers sends; dockerd does not check it).</summary>
    public const string ContentType = "application/vnd.docker.plugins.v1.1+json";

    // JSON requests are a few hundred bytes; a larger body is not a graphdriver request.
    private const int MaxJsonBody = 1 << 20;

    /// <summary>Handles one request.</summary>
    public async Task HandleAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        HttpRequest request = context.Request;
        string path = request.Path.Value ?? "/";
        string? id = null;
        var clock = Stopwatch.StartNew();
        try
        {
            if (!HttpMethods.IsPost(request.Method))
            {
                await FailAsync(context, path, id, HttpStatusCode.MethodNotAllowed, $"{request.Method} {path}: the plugin API takes POST only.").ConfigureAwait(false);
                return;
            }

            CancellationToken ct = context.RequestAborted;
            switch (path)
            {
                case "/Plugin.Activate":
                    await WriteAsync(context, new ActivateResponse(["GraphDriver"]), DockerJsonContext.Default.ActivateResponse).ConfigureAwait(false);
                    break;
                case "/GraphDriver.Init":
                    driver.Init(await ReadAsync(context, DockerJsonContext.Default.InitRequest).ConfigureAwait(false));
                    await WriteEmptyAsync(context).ConfigureAwait(false);
                    break;
                case "/GraphDriver.Capabilities":
                    _ = await ReadAsync(context, DockerJsonContext.Default.DriverRequest).ConfigureAwait(false);
                    await WriteAsync(context, new CapabilitiesResponse(new CapabilitiesJson(ReproducesExactDiffs: false)), DockerJsonContext.Default.CapabilitiesResponse).ConfigureAwait(false);
                    break;
                case "/GraphDriver.Create" or "/GraphDriver.CreateReadWrite":
                    {
                        DriverRequest body = await ReadAsync(context, DockerJsonContext.Default.DriverRequest).ConfigureAwait(false);
                        id = body.ID;
                        await driver.CreateAsync(body.ID, body.Parent, body.StorageOpt, readWrite: path.EndsWith("ReadWrite", StringComparison.Ordinal), ct).ConfigureAwait(false);
                        await WriteEmptyAsync(context).ConfigureAwait(false);
                        break;
                    }

                case "/GraphDriver.Remove":
                    id = (await ReadAsync(context, DockerJsonContext.Default.DriverRequest).ConfigureAwait(false)).ID;
                    await driver.RemoveAsync(id, ct).ConfigureAwait(false);
                    await WriteEmptyAsync(context).ConfigureAwait(false);
                    break;
                case "/GraphDriver.Get":
                    {
                        DriverRequest body = await ReadAsync(context, DockerJsonContext.Default.DriverRequest).ConfigureAwait(false);
                        id = body.ID;
                        string dir = await driver.GetAsync(body.ID, body.MountLabel, ct).ConfigureAwait(false);
                        await WriteAsync(context, new DirResponse(dir), DockerJsonContext.Default.DirResponse).ConfigureAwait(false);
                        break;
                    }

                case "/GraphDriver.Put":
                    id = (await ReadAsync(context, DockerJsonContext.Default.DriverRequest).ConfigureAwait(false)).ID;
                    await driver.PutAsync(id, ct).ConfigureAwait(false);
                    await WriteEmptyAsync(context).ConfigureAwait(false);
                    break;
                case "/GraphDriver.Exists":
                    id = (await ReadAsync(context, DockerJsonContext.Default.DriverRequest).ConfigureAwait(false)).ID;
                    await WriteAsync(context, new ExistsResponse(driver.Exists(id)), DockerJsonContext.Default.ExistsResponse).ConfigureAwait(false);
                    break;
                case "/GraphDriver.Status":
                    _ = await ReadAsync(context, DockerJsonContext.Default.DriverRequest).ConfigureAwait(false);
                    await WriteAsync(context, new StatusResponse(driver.Status()), DockerJsonContext.Default.StatusResponse).ConfigureAwait(false);
                    break;
                case "/GraphDriver.GetMetadata":
                    id = (await ReadAsync(context, DockerJsonContext.Default.DriverRequest).ConfigureAwait(false)).ID;
                    await WriteAsync(context, new MetadataResponse(driver.GetMetadata(id)), DockerJsonContext.Default.MetadataResponse).ConfigureAwait(false);
                    break;
                case "/GraphDriver.Cleanup":
                    _ = await ReadAsync(context, DockerJsonContext.Default.DriverRequest).ConfigureAwait(false);
                    await driver.CleanupAsync(ct).ConfigureAwait(false);
                    await WriteEmptyAsync(context).ConfigureAwait(false);
                    break;
                case "/GraphDriver.Changes":
                    {
                        DriverRequest body = await ReadAsync(context, DockerJsonContext.Default.DriverRequest).ConfigureAwait(false);
                        id = body.ID;
                        IReadOnlyList<LayerChange> changes = await driver.ChangesAsync(body.ID, body.Parent, ct).ConfigureAwait(false);
                        await WriteAsync(context, new ChangesResponse([.. changes.Select(ToJson)]), DockerJsonContext.Default.ChangesResponse).ConfigureAwait(false);
                        break;
                    }

                case "/GraphDriver.DiffSize":
                    {
                        DriverRequest body = await ReadAsync(context, DockerJsonContext.Default.DriverRequest).ConfigureAwait(false);
                        id = body.ID;
                        long size = await driver.DiffSizeAsync(body.ID, body.Parent, ct).ConfigureAwait(false);
                        await WriteAsync(context, new SizeResponse(size), DockerJsonContext.Default.SizeResponse).ConfigureAwait(false);
                        break;
                    }

                case "/GraphDriver.ApplyDiff":
                    {
                        // The query is not URL-escaped by dockerd; its ids are hex, and anything else fails validation.
                        // A layer tar comes as fast as dockerd decompresses it, which may pause: no minimum rate.
                        id = request.Query["id"].ToString();
                        context.Features.Get<IHttpMinRequestBodyDataRateFeature>()?.MinDataRate = null;
                        long size = await driver.ApplyDiffAsync(id, request.Query["parent"].ToString(), request.Body, ct).ConfigureAwait(false);
                        await WriteAsync(context, new SizeResponse(size), DockerJsonContext.Default.SizeResponse).ConfigureAwait(false);
                        break;
                    }

                case "/GraphDriver.Diff":
                    {
                        DriverRequest body = await ReadAsync(context, DockerJsonContext.Default.DriverRequest).ConfigureAwait(false);
                        id = body.ID;
                        if (!await DiffAsync(context, body, clock).ConfigureAwait(false))
                        {
                            return;
                        }

                        break;
                    }

                default:
                    await FailAsync(context, path, id, HttpStatusCode.NotFound, $"no such method: {path} (this plugin implements GraphDriver).").ConfigureAwait(false);
                    return;
            }

            Log.Call(logger, path, id ?? "", context.Response.StatusCode, clock.ElapsedMilliseconds);
        }
        catch (Exception ex) when (!context.Response.HasStarted)
        {
            (HttpStatusCode status, string message) = PluginError.Translate(ex);
            await FailAsync(context, path, id, status, message).ConfigureAwait(false);
        }
    }

    // The tar is streamed: until its first byte the answer can still be an error; after it, a failure aborts the
    // connection so dockerd never takes a truncated tar for a whole one. False when the connection was aborted.
    private async Task<bool> DiffAsync(HttpContext context, DriverRequest body, Stopwatch clock)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/x-tar";

        // dockerd may read the tar as slowly as it applies it elsewhere (docker commit): no minimum rate.
        context.Features.Get<IHttpMinResponseDataRateFeature>()?.MinDataRate = null;
        try
        {
            await driver.DiffAsync(body.ID, body.Parent, context.Response.Body, context.RequestAborted).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (context.Response.HasStarted)
        {
            Log.CallFailed(logger, "/GraphDriver.Diff", body.ID ?? "", StatusCodes.Status200OK, "aborted mid-stream after " + clock.ElapsedMilliseconds + " ms: " + PluginError.Translate(ex).Message);
            context.Abort();
            return false;
        }
    }

    private static ChangeJson ToJson(LayerChange change) =>
        new(change.Path, change.Kind switch { ChangeKind.Modified => 0, ChangeKind.Added => 1, _ => 2 });

    // Reads a JSON body: empty (Activate) or "null" is the empty request; more than MaxJsonBody is refused.
    private static async Task<T> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> type)
        where T : new()
    {
        var buffer = new ArrayBufferWriter<byte>();
        Stream body = context.Request.Body;
        while (true)
        {
            Memory<byte> chunk = buffer.GetMemory(16 << 10);
            int read = await body.ReadAsync(chunk, context.RequestAborted).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            buffer.Advance(read);
            if (buffer.WrittenCount > MaxJsonBody)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument, $"the request body is larger than {MaxJsonBody} bytes: not a graphdriver request.");
            }
        }

        ReadOnlySpan<byte> json = buffer.WrittenSpan.Trim(" \t\r\n"u8);
        return json.IsEmpty ? new T() : JsonSerializer.Deserialize(json, type) ?? new T();
    }

    private static Task WriteEmptyAsync(HttpContext context) => WriteAsync(context, new EmptyResponse(), DockerJsonContext.Default.EmptyResponse);

    private static async Task WriteAsync<T>(HttpContext context, T value, JsonTypeInfo<T> type)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = ContentType;
        await JsonSerializer.SerializeAsync(context.Response.Body, value, type, context.RequestAborted).ConfigureAwait(false);
    }

    private async Task FailAsync(HttpContext context, string path, string? id, HttpStatusCode status, string message)
    {
        Log.CallFailed(logger, path, id ?? "", (int)status, message);
        await PluginError.WriteAsync(context, status, message).ConfigureAwait(false);
    }
}
