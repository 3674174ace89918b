namespace BlockDriver.Vhdx;

/// <summary>One run of a <see cref="ChainIndex"/> block that several files decide (or one file holds in pieces):
/// from <see cref="Start"/> to the next run's start (or the block's end). 16 bytes.</summary>
/// <param name="Start">Byte offset of the run inside its index block.</param>
/// <param name="Layer">Index of the deciding file in the chain (0 = top); -1 for a hole.</param>
/// <param name="FileOffset">Where the run's data starts in that file; -1 for a zero run or a hole.</param>
internal readonly record struct IndexRun(int Start, int Layer, long FileOffset);
