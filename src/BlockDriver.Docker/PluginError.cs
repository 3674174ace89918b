using System.Net;
using System.Text.Json;
using BlockDriver.Abstractions;
using Microsoft.AspNetCore.Http;

namespace BlockDriver.Docker;

/// <summary>The plugin's one translation of failures onto the wire: HTTP 500 and <c>{"Err": "message"}</c>, as
/// go-plugins-helpers answers (dockerd reads Err from any non-200 answer and returns it as the call's error;
/// reference §4, §8); 404 for an unknown method (dockerd's "not implemented"), 405 for a method other than POST,
/// 400 for a body that is not the JSON the call takes. Exceptions never cross the socket.</summary>
public static class PluginError
{
    /// <summary>The status and message for <paramref name="exception"/>.</summary>
    public static (HttpStatusCode Status, string Message) Translate(Exception exception) => exception switch
    {
        BlockDriverException b => (HttpStatusCode.InternalServerError, b.Message),
        JsonException or BadHttpRequestException => (HttpStatusCode.BadRequest, $"malformed request: {exception.Message}"),

        // LayerMounter and LayerContent gather several failures (an operation and the unmount after it).
        AggregateException aggregate => (HttpStatusCode.InternalServerError,
            string.Join("; ", aggregate.Flatten().InnerExceptions.Select(e => Translate(e).Message).Prepend(aggregate.Message.Split(" (")[0]))),
        IOException or UnauthorizedAccessException or ArgumentException => (HttpStatusCode.InternalServerError, exception.Message),
        _ => (HttpStatusCode.InternalServerError, $"internal error ({exception.GetType().Name}): {exception.Message}"),
    };

    /// <summary>Writes <paramref name="status"/> and <c>{"Err": message}</c> as the response.</summary>
    public static Task WriteAsync(HttpContext context, HttpStatusCode status, string message)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Response.StatusCode = (int)status;
        context.Response.ContentType = PluginApi.ContentType;
        return context.Response.WriteAsync(JsonSerializer.Serialize(new Json.ErrResponse(message), Json.DockerJsonContext.Default.ErrResponse), context.RequestAborted);
    }
}
