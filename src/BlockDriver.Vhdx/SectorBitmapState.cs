namespace BlockDriver.Vhdx;

/// <summary>States of a sector-bitmap BAT entry (MS-VHDX 2.5.1.2).</summary>
internal static class SectorBitmapState
{
    public const int NotPresent = 0;
    public const int Present = 6;
}
