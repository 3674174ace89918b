namespace BlockDriver.Nbd;

/// <summary>Option numbers of the handshake phase (proto.md "Option types").</summary>
internal static class NbdOption
{
    public const uint ExportName = 1;
    public const uint Abort = 2;
    public const uint List = 3;
    public const uint StartTls = 5;
    public const uint Info = 6;
    public const uint Go = 7;
    public const uint StructuredReply = 8;
    public const uint ListMetaContext = 9;
    public const uint SetMetaContext = 10;
    public const uint ExtendedHeaders = 11;
}
