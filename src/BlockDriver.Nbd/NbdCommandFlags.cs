namespace BlockDriver.Nbd;

/// <summary>Per-request command flags (proto.md "Command flags").</summary>
internal static class NbdCommandFlags
{
    public const ushort Fua = 0x0001;
    public const ushort NoHole = 0x0002;
    public const ushort DontFragment = 0x0004;
    public const ushort ReqOne = 0x0008;
    public const ushort FastZero = 0x0010;
}
