namespace BlockDriver.Nbd;

/// <summary>Fixed protocol limits (proto.md "Size constraints" and "Strings").</summary>
internal static class NbdLimits
{
    /// <summary>Longest string (export name, description, meta context query) the protocol allows.</summary>
    public const int MaxStringLength = 4096;

    /// <summary>Largest option payload parsed (names and meta context queries fit many times over).</summary>
    public const int MaxOptionLength = 64 * 1024;

    /// <summary>Largest oversized option whose data is skipped and answered with NBD_REP_ERR_TOO_BIG; anything
    /// bigger is treated as an attack and the connection is closed.</summary>
    public const int MaxSkippedOptionLength = 1024 * 1024;

    /// <summary>Maximum payload advertised in NBD_INFO_BLOCK_SIZE: 32 MiB (2^25), the size every client
    /// assumes when none is advertised and the kernel's largest request.</summary>
    public const int MaxPayload = 32 * 1024 * 1024;

    /// <summary>Preferred block size advertised (at least the device's sector size): 4 KiB.</summary>
    public const int PreferredBlock = 4096;

    /// <summary>Most extents sent in one BLOCK_STATUS chunk (the spec allows 2^20); a client asks again for more.</summary>
    public const int MaxExtentsPerReply = 16 * 1024;

    /// <summary>Largest range one BLOCK_STATUS request maps; its length is only a hint, so a client asking for
    /// more gets extents covering a prefix. 2 GiB keeps every extent length inside a u32.</summary>
    public const long MaxBlockStatusLength = 1L << 31;

    /// <summary>Reads at least this long are mapped first and their holes sent as NBD_REPLY_TYPE_OFFSET_HOLE
    /// chunks instead of zero bytes; shorter reads are sent as one data chunk.</summary>
    public const int SparseReadThreshold = 64 * 1024;

    /// <summary>Reads and writes (without FUA) up to this long run on the connection's read loop until their first
    /// real wait instead of hopping to the thread pool: a 4 KiB page-cache copy costs less than the hop. Longer
    /// requests, flushes and FUA writes are handed off, so the loop keeps reading while they run.</summary>
    public const int InlineLimit = 64 * 1024;

    /// <summary>Reply data at least this long is written straight to the socket after the header is flushed,
    /// instead of being copied into the pipe's 64 KiB segments and sent segment by segment.</summary>
    public const int DirectSendThreshold = 64 * 1024;

    /// <summary>Unflushed reply bytes at which a reply is flushed even though more replies are waiting to be
    /// written (they would otherwise be flushed by the last of them).</summary>
    public const int MaxUnflushedReplyBytes = 64 * 1024;

    /// <summary>Reply data is written to the socket in slices of at most this many bytes, and
    /// <see cref="NbdServerOptions.SendTimeout"/> counts from the start of the slice being sent: 1 MiB per 30 s is
    /// 35 KB/s, which any client that reads at all exceeds.</summary>
    public const int SendSlice = 1024 * 1024;
}
