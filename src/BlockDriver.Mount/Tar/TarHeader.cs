namespace BlockDriver.Mount.Tar;

/// <summary>One tar entry with every extension header folded in (PAX 'x' records, GNU ././@LongLink 'L'/'K', GNU or
/// PAX sparse maps): what <see cref="LayerTarReader"/> returns and <see cref="LayerTarOutput"/> writes. Names, link
/// targets, xattr names and values are bytes exactly as the archive holds them.</summary>
internal sealed class TarHeader
{
    /// <summary>The entry name as archived (not cleaned: see <see cref="TarPaths.Clean"/>).</summary>
    public byte[] Name { get; set; } = [];

    /// <summary>One of <see cref="TarTypeFlag"/>'s file types ('0' for a sparse file, whose map is in
    /// <see cref="Sparse"/>; '\0' is reported as '0', or '5' for a name ending in '/').</summary>
    public byte TypeFlag { get; set; } = TarTypeFlag.Regular;

    /// <summary>Permission bits with set-id and sticky (07777).</summary>
    public uint Mode { get; set; }

    public int Uid { get; set; }

    public int Gid { get; set; }

    /// <summary>Bytes of entry data in the archive after the header (for a sparse file the stored regions only,
    /// after a PAX 1.0 map); 0 for header-only types.</summary>
    public long Size { get; set; }

    /// <summary>Modification time: seconds since the epoch (may be negative) and nanoseconds (0..999999999).</summary>
    public long MtimeSeconds { get; set; }

    public uint MtimeNanoseconds { get; set; }

    /// <summary>Target of a symbolic link (as stored) or of a hard link (an archive name).</summary>
    public byte[] LinkName { get; set; } = [];

    public uint DevMajor { get; set; }

    public uint DevMinor { get; set; }

    /// <summary>Extended attributes (SCHILY.xattr.NAME records), names in byte order.</summary>
    public SortedDictionary<byte[], byte[]> Xattrs { get; } = new(ByteNames.Comparer);

    /// <summary>The data regions of a sparse file, in order; null for a plain file.</summary>
    public IReadOnlyList<SparseSegment>? Sparse { get; set; }

    /// <summary>The file's size once holes are put back (equals <see cref="Size"/> for a plain file).</summary>
    public long RealSize { get; set; }

    /// <summary>The name for messages.</summary>
    public string DisplayName => ByteNames.Display(Name);
}
