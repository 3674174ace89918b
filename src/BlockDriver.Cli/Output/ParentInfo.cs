namespace BlockDriver.Cli.Output;

/// <summary>A differencing file's parent locator (MS-VHDX 2.6.2.6) and where it resolved.</summary>
/// <param name="Filename">The parent file found, an absolute path.</param>
/// <param name="RelativePath">The locator's <c>relative_path</c>, as stored (Windows separators), or null.</param>
/// <param name="AbsolutePath">The locator's <c>absolute_win32_path</c>, as stored, or null.</param>
/// <param name="Linkage">The locator's <c>parent_linkage</c>: the parent's DataWriteGuid when the child was made.</param>
internal sealed record ParentInfo(string Filename, string? RelativePath, string? AbsolutePath, Guid Linkage);
