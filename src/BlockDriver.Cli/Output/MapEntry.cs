namespace BlockDriver.Cli.Output;

/// <summary>One extent printed by <c>img map --json</c>. Offsets and lengths are in bytes.</summary>
/// <param name="Start">Guest offset.</param>
/// <param name="Length">Bytes.</param>
/// <param name="State"><c>data</c> (stored in <see cref="File"/>), <c>zero</c> (a ZERO block of <see cref="File"/>
/// hides its parents) or <c>hole</c> (no file has anything; reads as zeroes).</param>
/// <param name="Depth">Index of <see cref="File"/> in the chain: 0 is the file mapped, 1 its parent...; null for a
/// hole.</param>
/// <param name="File">The file that decides the extent; null for a hole.</param>
/// <param name="Offset">Where the data starts inside <see cref="File"/>; null unless <see cref="State"/> is data.</param>
internal sealed record MapEntry(long Start, long Length, string State, int? Depth, string? File, long? Offset);
