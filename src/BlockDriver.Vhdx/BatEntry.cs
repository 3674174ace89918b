namespace BlockDriver.Vhdx;

/// <summary>A BAT entry (MS-VHDX 2.5.1): state in bits 0–2, file offset in MiB in bits 20–63. Since the offset
/// field starts at bit 20, masking the low 20 bits off gives the byte offset directly.</summary>
internal readonly record struct BatEntry(ulong Raw)
{
    private const ulong OffsetMask = 0xFFFF_FFFF_FFF0_0000;

    /// <summary>The raw 3-bit state; a payload or a sector-bitmap state depending on the entry's index.</summary>
    public int State => (int)(Raw & 7);

    /// <summary>Byte offset of the block in the file (0 when none).</summary>
    public long FileOffset => (long)(Raw & OffsetMask);

    /// <summary>Bits 3–19 are reserved and must be zero.</summary>
    public bool HasReservedBits => (Raw & 0xF_FFF8) != 0;

    public static BatEntry Create(int state, long fileOffset) => new(((ulong)fileOffset & OffsetMask) | (uint)state);
}
