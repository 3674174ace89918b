namespace BlockDriver.Nbd;

/// <summary>Transmission-phase command types (proto.md "Request types").</summary>
internal static class NbdCommand
{
    public const ushort Read = 0;
    public const ushort Write = 1;
    public const ushort Disconnect = 2;
    public const ushort Flush = 3;
    public const ushort Trim = 4;
    public const ushort Cache = 5;
    public const ushort WriteZeroes = 6;
    public const ushort BlockStatus = 7;
}
