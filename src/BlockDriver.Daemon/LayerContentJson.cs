namespace BlockDriver.Daemon;

/// <summary>The answer of <c>POST /v1/layers/ID/apply</c> and <c>POST /v1/base-filesystem</c>.</summary>
/// <param name="Layer">The layer the tar was applied to, or the base file system layer.</param>
/// <param name="Bytes">Bytes of file content written (0 for the base file system).</param>
public sealed record LayerContentJson(string Layer, long Bytes);
