namespace BlockDriver.Vhdx;

/// <summary>States of a payload BAT entry (MS-VHDX 2.5.1.1).</summary>
public enum PayloadBlockState : byte
{
    /// <summary>No data here: zeroes in a dynamic file, the parent's data in a differencing file.</summary>
    NotPresent = 0,

    /// <summary>Contents undefined; read as zeroes, never from the parent.</summary>
    Undefined = 1,

    /// <summary>Reads as zeroes in every file type.</summary>
    Zero = 2,

    /// <summary>Unmapped (trimmed); read as zeroes.</summary>
    Unmapped = 3,

    /// <summary>Every sector of the block is in this file.</summary>
    FullyPresent = 6,

    /// <summary>Differencing only: the sector bitmap says, per sector, this file (1) or the parent (0).</summary>
    PartiallyPresent = 7,
}
