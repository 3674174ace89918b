namespace BlockDriver.Daemon;

/// <summary>One change of <c>GET /v1/layers/ID/changes</c>.</summary>
/// <param name="Kind"><c>added</c>, <c>modified</c> or <c>deleted</c>.</param>
/// <param name="Path">The path inside the layer, starting with '/'.</param>
public sealed record ChangeJson(string Kind, string Path);
