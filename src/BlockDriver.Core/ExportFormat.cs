namespace BlockDriver.Core;

/// <summary>The file format of an export.</summary>
public enum ExportFormat
{
    /// <summary>A raw sparse file: the disk's bytes, holes where it reads zeroes.</summary>
    Raw,

    /// <summary>A standalone dynamic VHDX.</summary>
    Vhdx,
}
