using System.Net.Http.Json;
using System.Net.Sockets;
using BlockDriver.Abstractions;
using BlockDriver.Daemon;
using BlockDriver.Mount.Tar;

namespace BlockDriver.Cli.Commands.Daemon;

/// <summary>The CLI's client of a running daemon's admin API: HTTP/JSON over STORE/run/admin.sock. A store without a
/// daemon (no socket, or a stale one nobody answers on) gives "no daemon is running for STORE"; a failed request
/// gives the daemon's one-line error as a <see cref="BlockDriverException"/> of the kind its status means.</summary>
internal sealed class AdminClient : IDisposable
{
    private readonly HttpClient _http;

    public AdminClient(string root)
    {
        Root = Path.GetFullPath(root);
        SocketPath = AdminEndpoint.SocketPath(Root);
        var handler = new SocketsHttpHandler { ConnectCallback = (_, ct) => ConnectAsync(ct) };
        _http = new HttpClient(handler, disposeHandler: true)
        {
            BaseAddress = new Uri("http://blockdriver/"),

            // Unmounting waits for a busy file system and flushes the layer: slow, but not stuck.
            Timeout = TimeSpan.FromMinutes(10),
        };
    }

    public string Root { get; }

    public string SocketPath { get; }

    public Task<DaemonStatus> StatusAsync(CancellationToken ct) =>
        SendAsync(new HttpRequestMessage(HttpMethod.Get, "v1/status"), AdminJsonContext.Default.DaemonStatus, ct);

    public Task<List<MountJson>> ListAsync(CancellationToken ct) =>
        SendAsync(new HttpRequestMessage(HttpMethod.Get, "v1/mounts"), AdminJsonContext.Default.ListMountJson, ct);

    public Task<MountJson> MountAsync(MountRequest mount, CancellationToken ct) =>
        SendAsync(new HttpRequestMessage(HttpMethod.Post, "v1/mounts")
        {
            Content = JsonContent.Create(mount, AdminJsonContext.Default.MountRequest),
        }, AdminJsonContext.Default.MountJson, ct);

    /// <summary>Drops one reference to the mount at <paramref name="directory"/>; returns the references left.</summary>
    public async Task<int> UnmountAsync(string directory, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, "v1/mounts?directory=" + Uri.EscapeDataString(directory));
        using HttpResponseMessage response = await SendCoreAsync(request, ct).ConfigureAwait(false);
        using var body = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false));
        return body.RootElement.GetProperty("references").GetInt32();
    }

    /// <summary>The store's base file system layer of <paramref name="capacity"/> bytes, made by the daemon if missing.</summary>
    public async Task<string> EnsureBaseFilesystemAsync(long capacity, CancellationToken ct)
    {
        LayerContentJson answer = await SendAsync(new HttpRequestMessage(HttpMethod.Post, $"v1/base-filesystem?capacity={capacity}"),
            AdminJsonContext.Default.LayerContentJson, ct).ConfigureAwait(false);
        return answer.Layer;
    }

    /// <summary>Streams layer tar <paramref name="tar"/> to the daemon, which applies it to <paramref name="layer"/>;
    /// returns the bytes of file content written. Disposes <paramref name="tar"/>.</summary>
    public async Task<long> ApplyAsync(string layer, Stream tar, CancellationToken ct)
    {
        var content = new StreamContent(tar, 1 << 20);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-tar");
        LayerContentJson answer = await SendAsync(new HttpRequestMessage(HttpMethod.Post, $"v1/layers/{Uri.EscapeDataString(layer)}/apply") { Content = content },
            AdminJsonContext.Default.LayerContentJson, ct).ConfigureAwait(false);
        return answer.Bytes;
    }

    /// <summary>What <paramref name="layer"/> changed relative to its parent.</summary>
    public async Task<IReadOnlyList<LayerChange>> ChangesAsync(string layer, CancellationToken ct)
    {
        List<ChangeJson> changes = await SendAsync(new HttpRequestMessage(HttpMethod.Get, $"v1/layers/{Uri.EscapeDataString(layer)}/changes"),
            AdminJsonContext.Default.ListChangeJson, ct).ConfigureAwait(false);
        return [.. changes.Select(c => new LayerChange(
            c.Kind switch
            {
                "added" => ChangeKind.Added,
                "modified" => ChangeKind.Modified,
                "deleted" => ChangeKind.Deleted,
                _ => throw new BlockDriverException(ErrorKind.Unavailable, $"the daemon for {Root} sent an unknown change kind \"{c.Kind}\"."),
            },
            // The exact bytes of a path that is not UTF-8 (the text beside them is lossy).
            c.PathBase64 is { } raw ? Convert.FromBase64String(raw) : System.Text.Encoding.UTF8.GetBytes(c.Path)))];
    }

    /// <summary>Copies the layer tar of <paramref name="layer"/>'s differences from its parent to
    /// <paramref name="output"/> as the daemon streams it. A daemon that fails part way aborts the connection, which
    /// fails the copy here: a truncated tar is never taken for a whole one.</summary>
    public async Task DiffAsync(string layer, Stream output, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v1/layers/{Uri.EscapeDataString(layer)}/diff");
        using HttpResponseMessage response = await SendCoreAsync(request, ct, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        Stream body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using (body.ConfigureAwait(false))
        {
            try
            {
                await body.CopyToAsync(output, 1 << 20, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or HttpRequestException)
            {
                throw new BlockDriverException(ErrorKind.Unavailable,
                    $"the daemon for {Root} stopped sending the diff of layer {layer} part way ({ex.Message}); see its log.", ex);
            }
        }
    }

    /// <summary>Whether a daemon answers on <paramref name="root"/>'s admin socket.</summary>
    public static bool IsDaemonRunning(string root)
    {
        string socketPath = AdminEndpoint.SocketPath(Path.GetFullPath(root));
        if (!File.Exists(socketPath))
        {
            return false;
        }

        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionRefused or SocketError.AddressNotAvailable)
        {
            return false;
        }
    }

    public void Dispose() => _http.Dispose();

    private async Task<T> SendAsync<T>(HttpRequestMessage request, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, CancellationToken ct)
    {
        using (request)
        {
            using HttpResponseMessage response = await SendCoreAsync(request, ct).ConfigureAwait(false);
            return await response.Content.ReadFromJsonAsync(type, ct).ConfigureAwait(false)
                ?? throw new BlockDriverException(ErrorKind.Unavailable, $"the daemon for {Root} sent an empty answer.");
        }
    }

    private async Task<HttpResponseMessage> SendCoreAsync(HttpRequestMessage request, CancellationToken ct,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, completion, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException ex) when (ex.InnerException is BlockDriverException inner)
        {
            throw inner;
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            string text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
            string message;
            try
            {
                message = System.Text.Json.JsonSerializer.Deserialize(text, AdminJsonContext.Default.ErrorJson)?.Error ?? text;
            }
            catch (System.Text.Json.JsonException)
            {
                message = $"the daemon answered {(int)response.StatusCode} {response.ReasonPhrase}: {text}";
            }

            throw new BlockDriverException(AdminError.KindOf(response.StatusCode), message);
        }
    }

    private async ValueTask<Stream> ConnectAsync(CancellationToken ct)
    {
        if (!File.Exists(SocketPath))
        {
            throw NoDaemon();
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), ct).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw ex.SocketErrorCode switch
            {
                SocketError.ConnectionRefused or SocketError.AddressNotAvailable => NoDaemon(),
                SocketError.AccessDenied => new BlockDriverException(ErrorKind.Unavailable,
                    $"permission denied connecting to {SocketPath}: the daemon's admin API is root's only.", ex),
                _ => new BlockDriverException(ErrorKind.Unavailable, $"connecting to the daemon at {SocketPath} failed: {ex.Message}.", ex),
            };
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private BlockDriverException NoDaemon() =>
        new(ErrorKind.Unavailable, $"no daemon is running for {Root} (start one with 'blockdriver daemon').");
}
