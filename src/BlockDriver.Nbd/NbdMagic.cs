namespace BlockDriver.Nbd;

/// <summary>The magic numbers that frame every NBD message (proto.md "Handshake" and "Transmission").</summary>
internal static class NbdMagic
{
    /// <summary>"NBDMAGIC": first 8 bytes of the server greeting.</summary>
    public const ulong Greeting = 0x4e42444d41474943;

    /// <summary>"IHAVEOPT": second half of the greeting, and the start of every option request.</summary>
    public const ulong Option = 0x49484156454F5054;

    /// <summary>Start of every option reply.</summary>
    public const ulong OptionReply = 0x0003e889045565a9;

    /// <summary>Start of every (compact, 28-byte) transmission request.</summary>
    public const uint Request = 0x25609513;

    /// <summary>Start of a simple (16-byte) reply.</summary>
    public const uint SimpleReply = 0x67446698;

    /// <summary>Start of a structured reply chunk (20-byte header).</summary>
    public const uint StructuredReply = 0x668e33ef;
}
