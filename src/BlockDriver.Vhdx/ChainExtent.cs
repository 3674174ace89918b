using BlockDriver.Abstractions;

namespace BlockDriver.Vhdx;

/// <summary>An extent of a chain and the file that decides it.</summary>
/// <param name="Offset">Virtual byte offset.</param>
/// <param name="Length">Bytes.</param>
/// <param name="Kind">Data, Zero (a ZERO-state block hides the parents) or Hole (nothing anywhere).</param>
/// <param name="Layer">Index into <see cref="VhdxDisk.Files"/> (0 = top), or -1 for a hole.</param>
/// <param name="FileOffset">Where the data starts inside that file, or -1.</param>
public readonly record struct ChainExtent(long Offset, long Length, ExtentKind Kind, int Layer, long FileOffset);
