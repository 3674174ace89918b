namespace BlockDriver.Nbd;

/// <summary>Information types of NBD_OPT_INFO / NBD_OPT_GO (proto.md "NBD_REP_INFO").</summary>
internal static class NbdInfoType
{
    /// <summary>u64 size + u16 transmission flags; mandatory in every successful INFO/GO.</summary>
    public const ushort Export = 0;

    /// <summary>The canonical export name.</summary>
    public const ushort Name = 1;

    /// <summary>A human-readable description.</summary>
    public const ushort Description = 2;

    /// <summary>u32 minimum, u32 preferred block size, u32 maximum payload.</summary>
    public const ushort BlockSize = 3;
}
