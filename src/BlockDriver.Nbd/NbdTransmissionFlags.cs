namespace BlockDriver.Nbd;

/// <summary>The export's transmission flags (proto.md "Transmission flags"), sent in NBD_INFO_EXPORT and the
/// NBD_OPT_EXPORT_NAME reply, and handed to the kernel by <see cref="NbdKernelAttach"/>.</summary>
[Flags]
public enum NbdTransmissionFlags : ushort
{
    /// <summary>No flag.</summary>
    None = 0,

    /// <summary>Always set.</summary>
    HasFlags = 0x0001,

    /// <summary>The export refuses writes, trims and write-zeroes with EPERM.</summary>
    ReadOnly = 0x0002,

    /// <summary>NBD_CMD_FLUSH is understood.</summary>
    SendFlush = 0x0004,

    /// <summary>NBD_CMD_FLAG_FUA is understood.</summary>
    SendFua = 0x0008,

    /// <summary>NBD_CMD_TRIM is understood.</summary>
    SendTrim = 0x0020,

    /// <summary>NBD_CMD_WRITE_ZEROES (and NBD_CMD_FLAG_NO_HOLE) is understood.</summary>
    SendWriteZeroes = 0x0040,

    /// <summary>NBD_CMD_FLAG_DF on reads is understood; only with structured replies.</summary>
    SendDontFragment = 0x0080,

    /// <summary>A flush or FUA reply on any connection covers writes completed on every connection.</summary>
    CanMultiConn = 0x0100,

    /// <summary>NBD_CMD_CACHE is understood.</summary>
    SendCache = 0x0400,

    /// <summary>NBD_CMD_FLAG_FAST_ZERO on write-zeroes is understood.</summary>
    SendFastZero = 0x0800,
}
