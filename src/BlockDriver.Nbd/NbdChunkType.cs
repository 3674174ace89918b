namespace BlockDriver.Nbd;

/// <summary>Structured reply chunk types (proto.md "Structured reply chunk message types").</summary>
internal static class NbdChunkType
{
    public const ushort None = 0;
    public const ushort OffsetData = 1;
    public const ushort OffsetHole = 2;
    public const ushort BlockStatus = 5;
    public const ushort Error = 0x8001;

    /// <summary>NBD_REPLY_FLAG_DONE: the last chunk of a reply.</summary>
    public const ushort FlagDone = 0x0001;
}
