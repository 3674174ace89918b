namespace BlockDriver.Nbd.Tests.Support;

/// <summary>Protocol numbers as the tests write them on the wire, spelled out independently of the server's
/// constants so that a wrong constant there fails a test here (values from proto.md).</summary>
public static class Wire
{
    public const ulong NbdMagic = 0x4e42444d41474943;
    public const ulong IHaveOpt = 0x49484156454F5054;
    public const ulong OptionReplyMagic = 0x0003e889045565a9;
    public const uint RequestMagic = 0x25609513;
    public const uint SimpleReplyMagic = 0x67446698;
    public const uint StructuredReplyMagic = 0x668e33ef;

    public const uint OptExportName = 1, OptAbort = 2, OptList = 3, OptStartTls = 5, OptInfo = 6, OptGo = 7,
        OptStructuredReply = 8, OptListMetaContext = 9, OptSetMetaContext = 10, OptExtendedHeaders = 11;

    public const uint RepAck = 1, RepServer = 2, RepInfo = 3, RepMetaContext = 4;
    public const uint ErrUnsup = 0x80000001, ErrInvalid = 0x80000003, ErrUnknown = 0x80000006,
        ErrBlockSizeReqd = 0x80000008, ErrTooBig = 0x80000009;

    public const ushort InfoExport = 0, InfoName = 1, InfoDescription = 2, InfoBlockSize = 3;

    public const ushort CmdRead = 0, CmdWrite = 1, CmdDisc = 2, CmdFlush = 3, CmdTrim = 4, CmdCache = 5,
        CmdWriteZeroes = 6, CmdBlockStatus = 7;

    public const ushort FlagFua = 1, FlagNoHole = 2, FlagDf = 4, FlagReqOne = 8, FlagFastZero = 16;

    public const ushort ChunkNone = 0, ChunkOffsetData = 1, ChunkOffsetHole = 2, ChunkBlockStatus = 5, ChunkError = 0x8001;
    public const ushort ReplyFlagDone = 1;

    public const ushort TfHasFlags = 0x1, TfReadOnly = 0x2, TfSendFlush = 0x4, TfSendFua = 0x8, TfSendTrim = 0x20,
        TfSendWriteZeroes = 0x40, TfSendDf = 0x80, TfCanMultiConn = 0x100, TfSendCache = 0x400, TfSendFastZero = 0x800;

    public const uint EPerm = 1, EIO = 5, EInval = 22, ENoSpc = 28, EOverflow = 75, ENotSup = 95;
}
