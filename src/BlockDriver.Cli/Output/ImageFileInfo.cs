namespace BlockDriver.Cli.Output;

/// <summary>One file of an <see cref="ImageInfo"/> chain. Sizes are in bytes.</summary>
internal sealed record ImageFileInfo
{
    /// <summary>The path: as given for the first file, as resolved from the child's parent locator for parents.</summary>
    public required string Filename { get; init; }

    /// <summary><c>vhdx</c> or <c>raw</c>.</summary>
    public required string Format { get; init; }

    /// <summary><c>dynamic</c> or <c>differencing</c>; null for raw.</summary>
    public string? Type { get; init; }

    /// <summary>Guest-visible size.</summary>
    public required long VirtualSize { get; init; }

    /// <summary>Bytes the file occupies on the host file system (allocated blocks, st_blocks × 512).</summary>
    public required long DiskSize { get; init; }

    /// <summary>The file's length (holes included).</summary>
    public required long FileLength { get; init; }

    /// <summary>VHDX payload block size; null for raw.</summary>
    public int? BlockSize { get; init; }

    /// <summary>Logical sector size (the I/O and copy-on-write granularity); null for raw.</summary>
    public int? LogicalSectorSize { get; init; }

    /// <summary>Physical sector size reported to guests; null for raw.</summary>
    public int? PhysicalSectorSize { get; init; }

    /// <summary>The VHDX header's DataWriteGuid: changes whenever the content changes; children record it.</summary>
    public Guid? DataWriteGuid { get; init; }

    /// <summary>The VHDX Virtual Disk ID (shared by a child and its parent).</summary>
    public Guid? VirtualDiskId { get; init; }

    /// <summary>True when the file had a pending log (it was not closed cleanly) that was replayed in memory to
    /// read it; null for raw.</summary>
    public bool? LogReplayed { get; init; }

    /// <summary>The parent of a differencing file; null otherwise.</summary>
    public ParentInfo? Parent { get; init; }
}
