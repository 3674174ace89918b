namespace BlockDriver.Cli.Output;

/// <summary>The document <c>img info --json</c> prints (shape documented in README.md; keys are camelCase and
/// always present, null when not applicable).</summary>
/// <param name="Filename">The file as given on the command line.</param>
/// <param name="Format"><c>vhdx</c> or <c>raw</c>.</param>
/// <param name="VirtualSize">Guest-visible size in bytes.</param>
/// <param name="Chain">The file itself first, then its parents up to the base; one entry for a raw or dynamic
/// file.</param>
internal sealed record ImageInfo(string Filename, string Format, long VirtualSize, IReadOnlyList<ImageFileInfo> Chain);
