namespace BlockDriver.Abstractions;

/// <summary>The state of an <see cref="Extent"/>; mirrors NBD's base:allocation (HOLE, ZERO flags).</summary>
public enum ExtentKind
{
    /// <summary>Allocated and holding data (NBD flags 0).</summary>
    Data = 0,

    /// <summary>Allocated, but known to read as zeroes (NBD_STATE_ZERO).</summary>
    Zero = 1,

    /// <summary>Not allocated anywhere; reads as zeroes (NBD_STATE_HOLE | NBD_STATE_ZERO).</summary>
    Hole = 2,
}
