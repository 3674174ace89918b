namespace BlockDriver.Mount.Tar;

/// <summary>One data region of a sparse file: <paramref name="Length"/> bytes at file offset
/// <paramref name="Offset"/>; everything between regions (and after the last, up to the real size) is a hole.</summary>
internal readonly record struct SparseSegment(long Offset, long Length);
