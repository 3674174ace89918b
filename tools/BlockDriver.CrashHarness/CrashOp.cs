namespace BlockDriver.CrashHarness;

/// <summary>What a workload step does.</summary>
public enum CrashOpKind
{
    /// <summary>Write <see cref="CrashWorkload.SectorPattern"/> data.</summary>
    Write,

    /// <summary>Write zeroes.</summary>
    WriteZeroes,

    /// <summary>Flush, then acknowledge on stdout.</summary>
    Flush,
}

/// <summary>One step of a workload: bytes [Offset, Offset + Length) of the disk.</summary>
public readonly record struct CrashOp(int Index, CrashOpKind Kind, long Offset, int Length);
