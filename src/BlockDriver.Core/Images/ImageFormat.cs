namespace BlockDriver.Core.Images;

/// <summary>The image formats the CLI reads and writes.</summary>
public enum ImageFormat
{
    /// <summary>A plain file: byte n of the disk is byte n of the file.</summary>
    Raw,

    /// <summary>MS-VHDX, dynamic or differencing (a chain).</summary>
    Vhdx,
}
