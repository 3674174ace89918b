using System.Net;
using System.Text.Json;
using BlockDriver.Abstractions;
using Microsoft.AspNetCore.Http;

namespace BlockDriver.Daemon;

/// <summary>The admin API's one translation of failures into HTTP: a status code and <c>{"error": "..."}</c>.
/// Exceptions never cross the socket; the CLI's client turns the status back into an <see cref="ErrorKind"/>.</summary>
public static class AdminError
{
    /// <summary>The HTTP status for a failure of kind <paramref name="kind"/>.</summary>
    public static HttpStatusCode StatusOf(ErrorKind kind) => kind switch
    {
        ErrorKind.NotFound => HttpStatusCode.NotFound,
        ErrorKind.AlreadyExists or ErrorKind.InUse or ErrorKind.ReadOnly => HttpStatusCode.Conflict,
        ErrorKind.InvalidArgument => HttpStatusCode.BadRequest,
        ErrorKind.NoSpace => HttpStatusCode.InsufficientStorage,
        ErrorKind.Unavailable => HttpStatusCode.ServiceUnavailable,
        _ => HttpStatusCode.InternalServerError,
    };

    /// <summary>The error kind a client reads from <paramref name="status"/> (the inverse of <see cref="StatusOf"/>
    /// where it is one to one).</summary>
    public static ErrorKind KindOf(HttpStatusCode status) => status switch
    {
        HttpStatusCode.NotFound => ErrorKind.NotFound,
        HttpStatusCode.Conflict => ErrorKind.InUse,
        HttpStatusCode.BadRequest or HttpStatusCode.MethodNotAllowed or HttpStatusCode.UnsupportedMediaType => ErrorKind.InvalidArgument,
        HttpStatusCode.InsufficientStorage => ErrorKind.NoSpace,
        HttpStatusCode.InternalServerError => ErrorKind.Corrupt,
        _ => ErrorKind.Unavailable,
    };

    /// <summary>The status and message for <paramref name="exception"/>.</summary>
    public static (HttpStatusCode Status, string Message) Translate(Exception exception) => exception switch
    {
        BlockDriverException b => (StatusOf(b.Kind), b.Message),
        JsonException or BadHttpRequestException => (HttpStatusCode.BadRequest, $"malformed request: {exception.Message}"),
        IOException or UnauthorizedAccessException => (HttpStatusCode.ServiceUnavailable, exception.Message),

        // LayerMounter.DisposeAsync and failed releases gather several failures; the first decides the status.
        AggregateException aggregate => (Translate(aggregate.Flatten().InnerExceptions[0]).Status,
            aggregate.Message + " " + string.Join("; ", aggregate.Flatten().InnerExceptions.Select(e => Translate(e).Message))),
        ArgumentException => (HttpStatusCode.BadRequest, exception.Message),
        _ => (HttpStatusCode.InternalServerError, $"internal error ({exception.GetType().Name}): {exception.Message}"),
    };

    /// <summary>Writes <paramref name="status"/> and <c>{"error": message}</c> as the response.</summary>
    public static Task WriteAsync(HttpContext context, HttpStatusCode status, string message)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Response.StatusCode = (int)status;
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(JsonSerializer.Serialize(new ErrorJson(message), AdminJsonContext.Default.ErrorJson), context.RequestAborted);
    }
}
