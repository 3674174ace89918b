namespace BlockDriver.Vhdx;

/// <summary>A region table entry (MS-VHDX 2.2.3.2): where a region (BAT, metadata, or one we do not know) lies.</summary>
internal readonly record struct RegionTableEntry(Guid Guid, long FileOffset, uint Length, bool Required);
