namespace BlockDriver.Vhdx;

/// <summary>The block, chunk and BAT arithmetic of MS-VHDX 2.5 for one file.</summary>
/// <remarks>
/// A sector-bitmap block is 1 MiB = 2^23 bits, one per logical sector, so a chunk covers 2^23 sectors
/// (4 GiB with 512-byte sectors). The chunk ratio R = 2^23 × LogicalSectorSize / BlockSize is the number of
/// payload blocks per chunk. The BAT interleaves R payload entries with one sector-bitmap entry:
/// payload block k is entry k + ⌊k/R⌋ and chunk c's bitmap entry is c·(R+1) + R.
/// </remarks>
internal sealed class VhdxGeometry
{
    public VhdxGeometry(long virtualSize, int blockSize, int logicalSectorSize, bool hasParent)
    {
        VirtualSize = virtualSize;
        BlockSize = blockSize;
        LogicalSectorSize = logicalSectorSize;
        HasParent = hasParent;
        ChunkRatio = (int)((1L << 23) * logicalSectorSize / blockSize);
        PayloadBlocks = (virtualSize + blockSize - 1) / blockSize;
        SectorBitmapBlocks = (PayloadBlocks + ChunkRatio - 1) / ChunkRatio;
        SectorsPerBlock = blockSize / logicalSectorSize;
        BitmapBytesPerBlock = SectorsPerBlock / 8;
        BatEntries = hasParent
            ? SectorBitmapBlocks * (ChunkRatio + 1)
            : PayloadBlocks + ((PayloadBlocks - 1) / ChunkRatio);
    }

    public long VirtualSize { get; }

    public int BlockSize { get; }

    public int LogicalSectorSize { get; }

    public bool HasParent { get; }

    /// <summary>Payload blocks per chunk (R).</summary>
    public int ChunkRatio { get; }

    public long PayloadBlocks { get; }

    public long SectorBitmapBlocks { get; }

    public int SectorsPerBlock { get; }

    /// <summary>Bytes of a sector-bitmap block that describe one payload block (BlockSize / sector / 8).</summary>
    public int BitmapBytesPerBlock { get; }

    /// <summary>Entries the BAT must hold for this file type (MS-VHDX 2.5).</summary>
    public long BatEntries { get; }

    /// <summary>Entries in the differencing layout, which is never smaller; new files size their BAT region with it
    /// so that a dynamic file could become differencing without moving the BAT.</summary>
    public long DifferencingBatEntries => SectorBitmapBlocks * (ChunkRatio + 1);

    public long PayloadIndex(long block) => block + (block / ChunkRatio);

    public long SectorBitmapIndex(long chunk) => (chunk * (ChunkRatio + 1)) + ChunkRatio;

    public bool IsSectorBitmapIndex(long index) => index % (ChunkRatio + 1) == ChunkRatio;

    /// <summary>Bytes of the virtual disk that block <paramref name="block"/> covers (the last block may be short).</summary>
    public int BlockLength(long block) => (int)Math.Min(BlockSize, VirtualSize - (block * BlockSize));

    /// <summary>Byte offset inside the chunk's 1 MiB bitmap of the bits of <paramref name="block"/>.</summary>
    public long BitmapOffsetInChunk(long block) => (block % ChunkRatio) * (long)BitmapBytesPerBlock;
}
