namespace BlockDriver.Vhdx;

/// <summary>Fixed sizes and offsets of MS-VHDX (sections 2.1–2.6).</summary>
internal static class VhdxConstants
{
    public const int KiB = 1024;
    public const int MiB = 1024 * 1024;

    /// <summary>Every top-level object (log, regions, blocks) is aligned to 1 MiB (MS-VHDX 2.1).</summary>
    public const long Alignment = MiB;

    public const long FileIdentifierOffset = 0;
    public const long Header1Offset = 64 * KiB;
    public const long Header2Offset = 128 * KiB;
    public const long RegionTable1Offset = 192 * KiB;
    public const long RegionTable2Offset = 256 * KiB;

    /// <summary>The header section: identifier, two headers, two region tables, reserved space.</summary>
    public const long HeaderSectionLength = MiB;

    public const int HeaderSize = 4 * KiB;
    public const int RegionTableSize = 64 * KiB;
    public const int MetadataTableSize = 64 * KiB;
    public const int LogSectorSize = 4 * KiB;

    /// <summary>A sector-bitmap block is always 1 MiB: 2^23 bits, one per logical sector (MS-VHDX 2.5.1).</summary>
    public const int SectorBitmapBlockSize = MiB;

    public const long MaxVirtualDiskSize = 64L * 1024 * 1024 * MiB;
    public const int MinBlockSize = MiB;
    public const int MaxBlockSize = 256 * MiB;
    public const int MaxRegionEntries = 2047;
    public const int MaxMetadataEntries = 2047;
    public const int MaxMetadataItemLength = MiB;

    /// <summary>Default for new files: the BAT then has one entry per 2 MiB, and a 4 KiB copy-on-write still
    /// costs only 4 KiB of disk because payload blocks are allocated sparse.</summary>
    public const int DefaultBlockSize = 2 * MiB;
    public const int DefaultLogLength = MiB;
}
