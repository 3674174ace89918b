namespace BlockDriver.Nbd;

/// <summary>Option reply types (proto.md "Option reply types"); errors have bit 31 set.</summary>
internal static class NbdOptionReply
{
    public const uint Ack = 1;
    public const uint Server = 2;
    public const uint Info = 3;
    public const uint MetaContext = 4;
    public const uint ErrUnsupported = 0x80000001;
    public const uint ErrPolicy = 0x80000002;
    public const uint ErrInvalid = 0x80000003;
    public const uint ErrPlatform = 0x80000004;
    public const uint ErrTlsRequired = 0x80000005;
    public const uint ErrUnknown = 0x80000006;
    public const uint ErrShutdown = 0x80000007;
    public const uint ErrBlockSizeRequired = 0x80000008;
    public const uint ErrTooBig = 0x80000009;
}
