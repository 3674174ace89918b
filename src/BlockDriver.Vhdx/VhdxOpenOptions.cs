namespace BlockDriver.Vhdx;

/// <summary>How to open a VHDX file or chain.</summary>
public sealed record VhdxOpenOptions
{
    /// <summary>Open the top file read-only. Parents are always opened read-only.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>When set, every parent must resolve to a file inside this directory, symbolic links resolved (a
    /// link inside it that points out counts as out); a locator that points elsewhere is refused as "not inside"
    /// the directory, with nothing said of what lies there (a layer store passes its layers directory, the CLI the
    /// image's own directory or <c>--parent-dir</c>). Null follows locators anywhere: only for files the caller
    /// made itself.</summary>
    public string? ParentRoot { get; init; }

    /// <summary>Longest chain accepted; deeper chains are refused as corrupt (and loops are caught earlier).</summary>
    public int MaxChainDepth { get; init; } = 1024;
}
