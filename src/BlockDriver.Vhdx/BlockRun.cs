namespace BlockDriver.Vhdx;

/// <summary>Where one file of a chain finds a run of virtual bytes.</summary>
internal enum RunKind : byte
{
    /// <summary>In this file, at <see cref="BlockRun.FileOffset"/>.</summary>
    Present,

    /// <summary>Reads as zeroes because the block state says so (ZERO, UNMAPPED, UNDEFINED).</summary>
    Zero,

    /// <summary>Nothing here and no parent to ask: zeroes, no storage anywhere.</summary>
    Hole,

    /// <summary>Not in this file: ask the parent at the same virtual offset.</summary>
    Parent,
}

/// <summary>A run of virtual bytes [Offset, Offset + Length) that one file resolves the same way.</summary>
internal readonly record struct BlockRun(long Offset, long Length, RunKind Kind, long FileOffset)
{
    public long End => Offset + Length;
}
