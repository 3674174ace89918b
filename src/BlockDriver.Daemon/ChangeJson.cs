using System.Text.Json.Serialization;

namespace BlockDriver.Daemon;

/// <summary>One change of <c>GET /v1/layers/ID/changes</c>.</summary>
/// <param name="Kind"><c>added</c>, <c>modified</c> or <c>deleted</c>.</param>
/// <param name="Path">The path inside the layer, starting with '/', as UTF-8 text. A file name need not be UTF-8 and
/// JSON cannot carry raw bytes: for such a path this text is lossy (U+FFFD for each invalid sequence) and
/// <paramref name="PathBase64"/> holds the exact bytes.</param>
/// <param name="PathBase64">The path's bytes in base64, present only when they are not valid UTF-8 (absent, the
/// path is exactly <paramref name="Path"/>'s UTF-8).</param>
public sealed record ChangeJson(string Kind, string Path,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? PathBase64 = null);
