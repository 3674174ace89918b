using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using BlockDriver.Mount.Tar;

namespace BlockDriver.Mount.Tests.Tar;

/// <summary>Byte-exact tars for the tests: entries built as <see cref="TarHeader"/>s and written with
/// <see cref="LayerTarOutput"/>, and tars read back into one comparable line per entry.</summary>
internal static class RawTar
{
    public const long Mtime = 1_714_979_289; // 2024-05-06 07:08:09 UTC

    /// <summary>An entry and its data (a sparse entry's regions one after the other; null for none).</summary>
    public sealed record Entry(TarHeader Header, byte[]? Data = null);

    public static byte[] B(string text) => Encoding.UTF8.GetBytes(text);

    public static Entry Dir(byte[] name, uint mode = 0x1ED) =>
        new(new TarHeader { Name = [.. name, (byte)'/'], TypeFlag = TarTypeFlag.Directory, Mode = mode, MtimeSeconds = Mtime });

    public static Entry Dir(string name, uint mode = 0x1ED) => Dir(B(name), mode);

    public static Entry File(byte[] name, byte[] content, uint mode = 0x1A4, int uid = 0, int gid = 0, uint nanoseconds = 0,
        params (string Name, byte[] Value)[] xattrs)
    {
        var header = new TarHeader
        {
            Name = name,
            Mode = mode,
            Uid = uid,
            Gid = gid,
            Size = content.Length,
            RealSize = content.Length,
            MtimeSeconds = Mtime,
            MtimeNanoseconds = nanoseconds,
        };
        foreach ((string key, byte[] value) in xattrs)
        {
            header.Xattrs[B(key)] = value;
        }

        return new Entry(header, content);
    }

    public static Entry File(string name, string content) => File(B(name), B(content));

    public static Entry Link(byte type, byte[] name, byte[] target) =>
        new(new TarHeader { Name = name, TypeFlag = type, LinkName = target, Mode = 0x1FF, MtimeSeconds = Mtime });

    public static Entry Device(byte type, string name, uint major, uint minor, uint mode = 0x1B6) =>
        new(new TarHeader { Name = B(name), TypeFlag = type, DevMajor = major, DevMinor = minor, Mode = mode, MtimeSeconds = Mtime });

    /// <summary>A sparse file: <paramref name="regions"/> of data at their offsets in a file of
    /// <paramref name="realSize"/> bytes.</summary>
    public static Entry Sparse(string name, long realSize, params (long Offset, byte[] Data)[] regions) =>
        new(new TarHeader
        {
            Name = B(name),
            Mode = 0x1A4,
            MtimeSeconds = Mtime,
            Size = regions.Sum(r => r.Data.Length),
            RealSize = realSize,
            Sparse = [.. regions.Select(r => new SparseSegment(r.Offset, r.Data.Length))],
        }, [.. regions.SelectMany(r => r.Data)]);

    public static MemoryStream Build(params Entry[] entries)
    {
        var stream = new MemoryStream();
        var tar = new LayerTarOutput(stream);
        foreach (Entry entry in entries)
        {
            tar.WriteHeaderAsync(entry.Header).AsTask().GetAwaiter().GetResult();
            if (tar.Remaining > 0)
            {
                tar.WriteDataAsync(entry.Data).AsTask().GetAwaiter().GetResult();
            }
        }

        tar.FinishAsync().AsTask().GetAwaiter().GetResult();
        stream.Position = 0;
        return stream;
    }

    /// <summary>One line per entry (name cleaned), in name order: every field a tar carries, bytes in hex where they
    /// need not be text, content as its size and a hash of its non-zero 4 KiB blocks with their offsets (so a file
    /// written sparse and one written whole compare equal, and an 8 GiB hole is not read as zeroes).
    /// <paramref name="skip"/> leaves out entries by cleaned name (the archive's own "./").</summary>
    public static async Task<List<string>> ReadAsync(Stream tar, Func<string, bool>? skip = null)
    {
        var reader = new LayerTarReader(tar);
        var lines = new List<string>();
        byte[] buffer = new byte[1 << 20];
        while (await reader.NextAsync() is { } header)
        {
            byte[] name = TarPaths.Clean(header.Name);
            if (skip?.Invoke(ByteNames.Display(name)) == true)
            {
                continue;
            }

            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            IReadOnlyList<SparseSegment> segments = header.Sparse ?? [new SparseSegment(0, header.Size)];
            foreach (SparseSegment segment in segments)
            {
                for (long done = 0; done < segment.Length;)
                {
                    // Block-aligned pieces of the logical file.
                    long position = segment.Offset + done;
                    int wanted = (int)Math.Min(4096 - (position % 4096), segment.Length - done);
                    await reader.ReadExactlyAsync(buffer.AsMemory(0, wanted));
                    if (buffer.AsSpan(0, wanted).ContainsAnyExcept((byte)0))
                    {
                        hash.AppendData(BitConverter.GetBytes(position));
                        hash.AppendData(buffer, 0, wanted);
                    }

                    done += wanted;
                }
            }

            if (header.TypeFlag == TarTypeFlag.HardLink)
            {
                // A hard link's own header fields are those of the inode its target already set.
                lines.Add($"{Hex(name)} ({ByteNames.Display(name)}) type=1 link={Hex(TarPaths.Clean(header.LinkName))}");
                continue;
            }

            string xattrs = string.Join(",", header.Xattrs.Select(x => $"{Hex(x.Key)}={Hex(x.Value)}"));
            string type = header.TypeFlag == TarTypeFlag.Contiguous ? "0" : ((char)header.TypeFlag).ToString();
            string content = header.TypeFlag is TarTypeFlag.Regular or TarTypeFlag.Contiguous
                ? $"size={header.RealSize} data={Convert.ToHexString(hash.GetHashAndReset())[..16]}"
                : "";
            string device = header.TypeFlag is TarTypeFlag.CharDevice or TarTypeFlag.BlockDevice ? $"dev={header.DevMajor},{header.DevMinor}" : "";
            string link = Hex(header.LinkName);
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"{Hex(name)} ({ByteNames.Display(name)}) type={type} mode={Convert.ToString(header.Mode, 8)} uid={header.Uid} gid={header.Gid} mtime={header.MtimeSeconds}.{header.MtimeNanoseconds:D9} link={link} {device} xattrs=[{xattrs}] {content}"));
        }

        lines.Sort(StringComparer.Ordinal);
        return lines;
    }

    public static string Hex(byte[] bytes) => Convert.ToHexString(bytes).ToLowerInvariant();
}
