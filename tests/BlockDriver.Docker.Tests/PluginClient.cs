using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace BlockDriver.Docker.Tests;

/// <summary>Calls the plugin over its unix socket the way dockerd does (reference §4): POST, JSON body followed by a
/// newline, no Content-Type, <c>Accept: application/vnd.docker.plugins.v1.2+json</c>; ApplyDiff with the tar as the
/// body and the ids in the query.</summary>
internal sealed class PluginClient : IDisposable
{
    private readonly HttpClient _http;

    public PluginClient(string socketPath)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        _http = new HttpClient(handler) { BaseAddress = new Uri("http://plugin"), Timeout = TimeSpan.FromMinutes(5) };
    }

    /// <summary>POSTs <paramref name="json"/> (serialised as is: a string is sent verbatim) to
    /// <c>/GraphDriver.METHOD</c>, or to <paramref name="method"/> itself when it starts with '/'.</summary>
    public async Task<PluginReply> CallAsync(string method, object? json)
    {
        string body = json switch
        {
            null => "",
            string text => text,
            _ => JsonSerializer.Serialize(json) + "\n",
        };
        return await SendAsync(method.StartsWith('/') ? method : "/GraphDriver." + method, new ByteArrayContent(Encoding.UTF8.GetBytes(body)));
    }

    /// <summary>Calls <paramref name="method"/> and checks it succeeded: 200 and no Err.</summary>
    public async Task<JsonElement> OkAsync(string method, object? json)
    {
        PluginReply reply = await CallAsync(method, json);
        Assert.True(reply.Status == HttpStatusCode.OK && reply.Err is null, $"{method} {JsonSerializer.Serialize(json)}: {(int)reply.Status} {reply.Body}");
        return reply.Json;
    }

    /// <summary>Calls <paramref name="method"/>, checks it failed with 500 and a non-empty Err, and returns the Err.</summary>
    public async Task<string> FailAsync(string method, object? json)
    {
        PluginReply reply = await CallAsync(method, json);
        Assert.True(reply.Status == HttpStatusCode.InternalServerError && reply.Err is { Length: > 0 }, $"{method} {JsonSerializer.Serialize(json)} should fail: {(int)reply.Status} {reply.Body}");
        return reply.Err!;
    }

    public Task<PluginReply> ApplyDiffAsync(string id, string parent, byte[] tar) =>
        SendAsync($"/GraphDriver.ApplyDiff?id={id}&parent={parent}", new ByteArrayContent(tar));

    /// <summary>Diff: the status and the body (the tar, or the error JSON).</summary>
    public async Task<(HttpStatusCode Status, byte[] Body)> DiffAsync(string id, string parent)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/GraphDriver.Diff")
        {
            Content = new ByteArrayContent(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { ID = id, Parent = parent }) + "\n")),
        };
        using HttpResponseMessage response = await _http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsByteArrayAsync());
    }

    /// <summary>Diff with its body left unread: the response as soon as its headers came, the tar still streaming.</summary>
    public async Task<HttpResponseMessage> OpenDiffAsync(string id, string parent, CancellationToken ct = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/GraphDriver.Diff")
        {
            Content = new ByteArrayContent(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { ID = id, Parent = parent }) + "\n")),
        };
        return await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
    }

    /// <summary>Sends a request with another HTTP method than POST.</summary>
    public async Task<PluginReply> SendAsync(HttpMethod method, string path)
    {
        using var request = new HttpRequestMessage(method, path);
        using HttpResponseMessage response = await _http.SendAsync(request);
        return new PluginReply(response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public void Dispose() => _http.Dispose();

    private async Task<PluginReply> SendAsync(string path, HttpContent content)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = content };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/vnd.docker.plugins.v1.2+json"));
        using HttpResponseMessage response = await _http.SendAsync(request);
        return new PluginReply(response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}

/// <summary>A plugin answer: the status, the body, its JSON and its Err.</summary>
internal sealed record PluginReply(HttpStatusCode Status, string Body)
{
    public JsonElement Json { get; } = Body.Length == 0 ? default : JsonDocument.Parse(Body).RootElement.Clone();

    public string? Err => Json.ValueKind == JsonValueKind.Object && Json.TryGetProperty(nameof(Err), out JsonElement err) && err.GetString() is { Length: > 0 } text ? text : null;
}
