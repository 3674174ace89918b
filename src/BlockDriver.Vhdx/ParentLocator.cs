using System.Buffers.Binary;
using System.Text;

namespace BlockDriver.Vhdx;

/// <summary>The VHDX parent locator (MS-VHDX 2.6.2.6): key/value UTF-16LE strings naming a differencing file's
/// parent. Keys used: <c>parent_linkage</c> (the parent's DataWriteGuid), <c>parent_linkage2</c>,
/// <c>relative_path</c>, <c>volume_path</c>, <c>absolute_win32_path</c>.</summary>
public sealed class ParentLocator
{
    internal const string LinkageKey = "parent_linkage";
    internal const string Linkage2Key = "parent_linkage2";
    /// <summary>The locator key of the parent's path relative to the child's directory (MS-VHDX 2.6.2.6.1).</summary>
    public const string RelativePathKey = "relative_path";
    internal const string VolumePathKey = "volume_path";
    internal const string AbsolutePathKey = "absolute_win32_path";

    private const int HeaderSize = 20;
    private const int EntrySize = 12;

    internal ParentLocator(IReadOnlyDictionary<string, string> entries)
    {
        Entries = entries;
    }

    /// <summary>All key/value pairs, keys case-sensitive.</summary>
    public IReadOnlyDictionary<string, string> Entries { get; }

    /// <summary>The parent's DataWriteGuid recorded when the link was made.</summary>
    public Guid Linkage => Guid.Parse(Entries[LinkageKey]);

    /// <summary>The optional second accepted parent identity (used during merges).</summary>
    public Guid? Linkage2 => Entries.TryGetValue(Linkage2Key, out string? v) ? Guid.Parse(v) : null;

    /// <summary>Candidate parent paths in the spec's lookup order, as stored (Windows separators possible).</summary>
    public IEnumerable<(string Key, string Path)> CandidatePaths()
    {
        foreach (string key in new[] { RelativePathKey, VolumePathKey, AbsolutePathKey })
        {
            if (Entries.TryGetValue(key, out string? value))
            {
                yield return (key, value);
            }
        }
    }

    /// <summary>Builds a locator for a new child: linkage to <paramref name="parentDataWriteGuid"/>, the parent's
    /// path relative to the child's directory (with <c>\</c> separators, as the spec writes it) and its absolute
    /// path (a Linux path: this implementation resolves it literally, as DiscUtils does).</summary>
    internal static ParentLocator ForParent(string childPath, string parentPath, Guid parentDataWriteGuid)
    {
        string childDirectory = Path.GetDirectoryName(Path.GetFullPath(childPath))!;
        string parentFull = Path.GetFullPath(parentPath);
        string relative = Path.GetRelativePath(childDirectory, parentFull).Replace('/', '\\');
        if (!relative.StartsWith("..", StringComparison.Ordinal))
        {
            relative = ".\\" + relative;
        }

        return new ParentLocator(new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [LinkageKey] = parentDataWriteGuid.ToString("B"),
            [RelativePathKey] = relative,
            [AbsolutePathKey] = parentFull,
        });
    }

    /// <summary>Parses and validates an item: type GUID, bounds of every string, UTF-16 without NULs, unique
    /// keys, a parseable <c>parent_linkage</c> and at least one path.</summary>
    internal static ParentLocator Parse(ReadOnlySpan<byte> item, string path, long fileOffset)
    {
        const string Structure = "parent locator";
        if (item.Length < HeaderSize)
        {
            throw new VhdxFormatException(path, Structure, fileOffset, "item shorter than its 20-byte header.");
        }

        if (new Guid(item[..16]) != VhdxGuids.VhdxParentLocatorType)
        {
            throw new VhdxFormatException(path, Structure, fileOffset, $"unknown locator type {new Guid(item[..16])}.");
        }

        int count = BinaryPrimitives.ReadUInt16LittleEndian(item[18..]);
        if (HeaderSize + ((long)count * EntrySize) > item.Length)
        {
            throw new VhdxFormatException(path, Structure, fileOffset, $"{count} entries do not fit in {item.Length} bytes.");
        }

        // MS-VHDX 2.6.2.6: each key and value is a run of the item's bytes. Their lengths together may not exceed
        // what the item holds after the entries: overlapping strings would let a 1 MiB item (the metadata item
        // limit) decode to gigabytes, 87,000 distinct keys of 64 KiB each.
        long stringBytes = 0;
        long room = item.Length - HeaderSize - ((long)count * EntrySize);
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> e = item.Slice(HeaderSize + (i * EntrySize), EntrySize);
            CheckString(item, BinaryPrimitives.ReadUInt32LittleEndian(e), BinaryPrimitives.ReadUInt16LittleEndian(e[8..]), path, fileOffset, $"key {i}");
            CheckString(item, BinaryPrimitives.ReadUInt32LittleEndian(e[4..]), BinaryPrimitives.ReadUInt16LittleEndian(e[10..]), path, fileOffset, $"value {i}");
            stringBytes += BinaryPrimitives.ReadUInt16LittleEndian(e[8..]) + BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
        }

        if (stringBytes > room)
        {
            throw new VhdxFormatException(path, Structure, fileOffset, $"{count} entries claim {stringBytes} bytes of keys and values, more than the {room} bytes the item holds after its entries.");
        }

        var entries = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            ReadOnlySpan<byte> e = item.Slice(HeaderSize + (i * EntrySize), EntrySize);
            string key = ReadString(item, BinaryPrimitives.ReadUInt32LittleEndian(e), BinaryPrimitives.ReadUInt16LittleEndian(e[8..]), path, fileOffset, $"key {i}");
            string value = ReadString(item, BinaryPrimitives.ReadUInt32LittleEndian(e[4..]), BinaryPrimitives.ReadUInt16LittleEndian(e[10..]), path, fileOffset, $"value {i}");
            if (!entries.TryAdd(key, value))
            {
                throw new VhdxFormatException(path, Structure, fileOffset, $"duplicate key \"{key}\".");
            }
        }

        if (!entries.TryGetValue(LinkageKey, out string? linkage) || !Guid.TryParse(linkage, out _))
        {
            throw new VhdxFormatException(path, Structure, fileOffset, "missing or malformed parent_linkage.");
        }

        if (entries.TryGetValue(Linkage2Key, out string? linkage2) && !Guid.TryParse(linkage2, out _))
        {
            throw new VhdxFormatException(path, Structure, fileOffset, "malformed parent_linkage2.");
        }

        var locator = new ParentLocator(entries);
        if (!locator.CandidatePaths().Any())
        {
            throw new VhdxFormatException(path, Structure, fileOffset, "no parent path (relative_path, volume_path or absolute_win32_path).");
        }

        return locator;
    }

    /// <summary>Serializes: header, entries, then key/value strings packed back to back.</summary>
    internal byte[] ToBytes()
    {
        var keys = Entries.Keys.Order(StringComparer.Ordinal).ToList();
        int stringsStart = HeaderSize + (keys.Count * EntrySize);
        int total = stringsStart + keys.Sum(k => Encoding.Unicode.GetByteCount(k) + Encoding.Unicode.GetByteCount(Entries[k]));
        byte[] bytes = new byte[total];
        VhdxGuids.VhdxParentLocatorType.TryWriteBytes(bytes);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(18), (ushort)keys.Count);
        int position = stringsStart;
        for (int i = 0; i < keys.Count; i++)
        {
            Span<byte> e = bytes.AsSpan(HeaderSize + (i * EntrySize), EntrySize);
            int keyLength = Encoding.Unicode.GetBytes(keys[i], bytes.AsSpan(position));
            BinaryPrimitives.WriteUInt32LittleEndian(e, (uint)position);
            BinaryPrimitives.WriteUInt16LittleEndian(e[8..], (ushort)keyLength);
            position += keyLength;
            int valueLength = Encoding.Unicode.GetBytes(Entries[keys[i]], bytes.AsSpan(position));
            BinaryPrimitives.WriteUInt32LittleEndian(e[4..], (uint)position);
            BinaryPrimitives.WriteUInt16LittleEndian(e[10..], (ushort)valueLength);
            position += valueLength;
        }

        return bytes;
    }

    private static void CheckString(ReadOnlySpan<byte> item, uint offset, ushort length, string path, long fileOffset, string what)
    {
        if (offset == 0 || length == 0 || length % 2 != 0 || offset + (long)length > item.Length)
        {
            throw new VhdxFormatException(path, "parent locator", fileOffset, $"{what} at {offset} of {length} bytes lies outside the item or is empty.");
        }
    }

    private static string ReadString(ReadOnlySpan<byte> item, uint offset, ushort length, string path, long fileOffset, string what)
    {
        CheckString(item, offset, length, path, fileOffset, what);
        string text = Encoding.Unicode.GetString(item.Slice((int)offset, length));
        if (text.Contains('\0', StringComparison.Ordinal))
        {
            throw new VhdxFormatException(path, "parent locator", fileOffset, $"{what} contains a NUL character.");
        }

        return text;
    }
}
