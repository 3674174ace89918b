using System.Text;
using BlockDriver.Abstractions;
using BlockDriver.Mount.Tar;
using BlockDriver.Testing;
using static BlockDriver.Mount.Tests.Tar.RawTar;

namespace BlockDriver.Mount.Tests.Tar;

/// <summary>The header code on its own: numeric fields, pax records, GNU long names and sparse headers built
/// block by block, the size caps and the errors.</summary>
public sealed class TarHeaderTests : IDisposable
{
    private readonly TempDirectory _temp = new("tar-hdr");

    public void Dispose()
    {
        TarCases.RemoveTree(_temp.GetFilePath("root"));
        _temp.Dispose();
    }

    [Theory]
    [InlineData("0000644\0", 420)]
    [InlineData("   644 \0", 420)]
    [InlineData("\0\0\0\0\0\0\0\0", 0)]
    [InlineData("77777777777\0", 8589934591)]
    public void Octal_fields_parse(string field, long expected)
    {
        Assert.True(TarHeaderBlock.TryParseNumber(Encoding.Latin1.GetBytes(field), out long value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(8589934591L)] // the largest octal size
    [InlineData(8589934592L)] // 8 GiB: base-256
    [InlineData(long.MaxValue)]
    [InlineData(-1L)]
    [InlineData(-4611686018427387904L)]
    public void Numbers_round_trip_through_octal_or_base_256(long value)
    {
        byte[] field = new byte[12];
        TarHeaderBlock.WriteNumber(field, value);
        Assert.Equal(value is >= 0 and < 8589934592L, field[0] != 0x80 && (field[0] & 0x80) == 0);
        Assert.True(TarHeaderBlock.TryParseNumber(field, out long parsed));
        Assert.Equal(value, parsed);
    }

    [Theory]
    [InlineData("0008\0")]
    [InlineData("12a4\0")]
    public void A_field_that_is_not_octal_is_refused(string field) =>
        Assert.False(TarHeaderBlock.TryParseNumber(Encoding.Latin1.GetBytes(field), out _));

    [Fact]
    public void Pax_records_hold_any_bytes_and_count_their_own_length_digits()
    {
        var records = new List<(byte[], byte[])>
        {
            (B("a"), B("b")), // "6 a=b\n"
            (B("k"), Encoding.ASCII.GetBytes(new string('x', 4))), // " k=xxxx\n" is 8: 9 with its digit
            (B("k"), Encoding.ASCII.GetBytes(new string('x', 5))), // 9 + one digit is 10, which has two: 11
            (B("k"), Encoding.ASCII.GetBytes(new string('x', 93))), // 97 + two digits: 99
            (B("k"), Encoding.ASCII.GetBytes(new string('x', 94))), // 98 + two is 100, which has three: 101
            (B("SCHILY.xattr.user.bin"), [0x00, 0x0a, 0xff, 0x3d, 0x20, 0x80]),
        };
        byte[] data = PaxRecords.Format(records);
        Assert.StartsWith("6 a=b\n9 k=xxxx\n11 k=xxxxx\n99 k=", Encoding.Latin1.GetString(data), StringComparison.Ordinal);
        Assert.Contains("\n101 k=", Encoding.Latin1.GetString(data), StringComparison.Ordinal);
        List<(byte[] Key, byte[] Value)> parsed = PaxRecords.Parse(data, "test");
        Assert.Equal(records.Select(r => Hex(r.Item1) + "=" + Hex(r.Item2)), parsed.Select(r => Hex(r.Key) + "=" + Hex(r.Value)));
    }

    [Theory]
    [InlineData("5 a=b\n")]
    [InlineData("7 a=b\n")]
    [InlineData("x a=b\n")]
    [InlineData("6 ab\n\n")]
    [InlineData("99999999999999999999999 a=b\n")]
    public void A_malformed_pax_record_is_invalid_argument(string data)
    {
        BlockDriverException e = Assert.Throws<BlockDriverException>(() => PaxRecords.Parse(Encoding.ASCII.GetBytes(data), "test"));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
    }

    [Theory]
    [InlineData("1714979289", 1714979289L, 0u)]
    [InlineData("1714979289.5", 1714979289L, 500000000u)]
    [InlineData("1.123456789123", 1L, 123456789u)]
    [InlineData("-1.25", -2L, 750000000u)]
    [InlineData("-3", -3L, 0u)]
    public void Pax_times_parse_and_format(string text, long seconds, uint nanoseconds)
    {
        Assert.Equal((seconds, nanoseconds), PaxRecords.ParseTime(Encoding.ASCII.GetBytes(text), "test"));
        Assert.Equal((seconds, nanoseconds), PaxRecords.ParseTime(PaxRecords.FormatTime(seconds, nanoseconds), "test"));
    }

    [Fact]
    public async Task Gnu_long_name_and_long_link_headers_name_the_next_entry()
    {
        byte[] name = B(new string('n', 300));
        byte[] target = [.. B(new string('t', 200)), 0xff];
        using var tar = new MemoryStream();
        WriteExtension(tar, TarTypeFlag.GnuLongName, [.. name, 0]);
        WriteExtension(tar, TarTypeFlag.GnuLongLink, [.. target, 0]);
        tar.Write(Block(B("truncated"), TarTypeFlag.Symlink, 0, gnu: true));
        tar.Write(new byte[1024]);
        tar.Position = 0;

        var reader = new LayerTarReader(tar);
        TarHeader header = (await reader.NextAsync())!;
        Assert.Equal(name, header.Name);
        Assert.Equal(target, header.LinkName);
        Assert.Equal(TarTypeFlag.Symlink, header.TypeFlag);
        Assert.Null(await reader.NextAsync());
    }

    [Theory]
    [InlineData(TarTypeFlag.PaxExtended, "PAX")]
    [InlineData(TarTypeFlag.PaxGlobal, "PAX")]
    [InlineData(TarTypeFlag.GnuLongName, "GNU long name/link")]
    [InlineData(TarTypeFlag.GnuLongLink, "GNU long name/link")]
    public async Task An_extension_header_over_1_MiB_is_refused_before_it_is_read(byte type, string kind)
    {
        // 256 MiB declared, of which the stream holds only zeros made on demand: refused from the header alone.
        long declared = 256L << 20;
        var stream = new GeneratedStream(Block(B("././@LongLink"), type, declared, gnu: true), declared);
        long before = GC.GetAllocatedBytesForCurrentThread();
        BlockDriverException e = await Assert.ThrowsAsync<BlockDriverException>(async () => await new LayerTarReader(stream).NextAsync());
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Contains($"a {kind} header of {declared} bytes is over the 1 MiB limit", e.Message, StringComparison.Ordinal);
        Assert.Contains("entry 1 (header at byte 0", e.Message, StringComparison.Ordinal);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < (4 << 20), "the header was buffered");
    }

    [Fact]
    public async Task A_pax_header_of_exactly_1_MiB_is_read()
    {
        byte[] value = new byte[(1 << 20) - 32];
        Array.Fill(value, (byte)'v');
        byte[] record = PaxRecords.Format([(B("comment"), value)]);
        Array.Resize(ref record, 1 << 20);
        using var tar = new MemoryStream();
        tar.Write(Block(B("././@PaxHeader"), TarTypeFlag.PaxExtended, record.Length, gnu: false));
        tar.Write(record);
        tar.Write(Block(B("f"), TarTypeFlag.Regular, 0, gnu: false));
        tar.Write(new byte[1024]);
        tar.Position = 0;
        Assert.Equal(B("f"), (await new LayerTarReader(tar).NextAsync())!.Name);
    }

    [Fact]
    public async Task A_gnu_sparse_header_with_extension_blocks_applies_with_its_holes()
    {
        (byte[] tar, (long Offset, byte[] Data)[] regions, long realSize) = GnuSparseTar();
        string root = _temp.GetFilePath("root");
        Directory.CreateDirectory(root);
        await LayerTarApplier.ApplyAsync(new MemoryStream(tar), root);

        byte[] expected = new byte[realSize];
        foreach ((long offset, byte[] data) in regions)
        {
            data.CopyTo(expected, offset);
        }

        Assert.Equal(expected, await System.IO.File.ReadAllBytesAsync(Path.Combine(root, "sparse")));
        TarCases.AssertHolesKept(root, [new Entry(new TarHeader { Name = B("sparse"), Sparse = [], Size = 6 * 512, RealSize = realSize })]);
    }

    [Theory]
    [InlineData("0.0")]
    [InlineData("0.1")]
    public async Task Pax_sparse_0_x_maps_apply_under_their_real_name(string version)
    {
        byte[] a = TarCases.Pattern(1000, 1), b = TarCases.Pattern(3000, 2);
        var records = new List<(byte[], byte[])> { (B("GNU.sparse.size"), B("1048576")), (B("GNU.sparse.numblocks"), B("2")) };
        if (version == "0.0")
        {
            records.AddRange([(B("GNU.sparse.offset"), B("4096")), (B("GNU.sparse.numbytes"), B("1000")),
                (B("GNU.sparse.offset"), B("900000")), (B("GNU.sparse.numbytes"), B("3000"))]);
        }
        else
        {
            records.Add((B("GNU.sparse.map"), B("4096,1000,900000,3000")));
            records.Add((B("GNU.sparse.name"), B("dir/real-name")));
        }

        byte[] pax = PaxRecords.Format(records);
        using var tar = new MemoryStream();
        tar.Write(Block(B("././@PaxHeader"), TarTypeFlag.PaxExtended, pax.Length, gnu: false));
        tar.Write(pax);
        tar.Write(new byte[(512 - (pax.Length % 512)) % 512]);
        tar.Write(Block(B(version == "0.0" ? "dir/real-name" : "dir/GNUSparseFile.123/real-name"), TarTypeFlag.Regular, 4000, gnu: false));
        tar.Write(a);
        tar.Write(b);
        tar.Write(new byte[(512 - (4000 % 512)) + 1024]);
        tar.Position = 0;
        string root = _temp.GetFilePath("root");
        Directory.CreateDirectory(root);
        await LayerTarApplier.ApplyAsync(tar, root);

        Assert.Equal(["/dir", "/dir/real-name"], TarTestTree.Paths(root));
        byte[] expected = new byte[1048576];
        a.CopyTo(expected, 4096);
        b.CopyTo(expected, 900000);
        Assert.Equal(expected, await System.IO.File.ReadAllBytesAsync(Path.Combine(root, "dir", "real-name")));
    }

    [Theory]
    [InlineData("checksum")]
    [InlineData("truncated header")]
    [InlineData("truncated data")]
    [InlineData("sparse overlap")]
    [InlineData("sparse past the end")]
    [InlineData("sparse sizes disagree")]
    [InlineData("unknown type")]
    public async Task Malformed_tars_are_invalid_argument(string what)
    {
        byte[] tar = what switch
        {
            "checksum" => [.. Corrupt(Build(File("f", "x")).ToArray(), 148), .. new byte[1024]],
            "truncated header" => Build(File("f", "x")).ToArray()[..300],
            "truncated data" => Build(File("f", new string('x', 5000))).ToArray()[..2048],
            "sparse overlap" => Build(Sparse("s", 10000, (0, new byte[100]), (50, new byte[100]))).ToArray(),
            "sparse past the end" => Build(Sparse("s", 100, (50, new byte[100]))).ToArray(),
            "sparse sizes disagree" => [.. WithSize(Block(B("s"), TarTypeFlag.GnuSparse, 100, gnu: true)), .. new byte[2048]],
            _ => [.. Block(B("f"), (byte)'Z', 0, gnu: false), .. new byte[1024]],
        };
        string root = _temp.GetFilePath("root");
        Directory.CreateDirectory(root);
        BlockDriverException e = await Assert.ThrowsAsync<BlockDriverException>(() => LayerTarApplier.ApplyAsync(new MemoryStream(tar), root));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.StartsWith("layer tar: ", e.Message, StringComparison.Ordinal);

        static byte[] Corrupt(byte[] bytes, int at)
        {
            bytes[at] ^= 0x01;
            return bytes;
        }

        static byte[] WithSize(byte[] header)
        {
            // One region of 50 bytes in a GNU sparse header whose data is 100 bytes.
            TarHeaderBlock.WriteNumber(header.AsSpan(386, 12), 0);
            TarHeaderBlock.WriteNumber(header.AsSpan(398, 12), 50);
            TarHeaderBlock.WriteNumber(header.AsSpan(TarHeaderBlock.GnuRealSize), 1000);
            TarHeaderBlock.WriteChecksum(header);
            return header;
        }
    }

    /// <summary>A GNU sparse ('S') entry of six 512-byte regions 64 KiB apart, four in the header and two in an
    /// extension block.</summary>
    internal static (byte[] Tar, (long Offset, byte[] Data)[] Regions, long RealSize) GnuSparseTar()
    {
        // Six regions: four in the header, two in an extension block; each 512 bytes of data, 64 KiB apart.
        (long Offset, byte[] Data)[] regions = [.. Enumerable.Range(0, 6).Select(i => ((long)i * 65536, TarCases.Pattern(512, i + 10)))];
        long realSize = 6 * 65536;
        byte[] header = Block(B("sparse"), TarTypeFlag.GnuSparse, 6 * 512, gnu: true);
        for (int i = 0; i < 4; i++)
        {
            TarHeaderBlock.WriteNumber(header.AsSpan(386 + (i * 24), 12), regions[i].Offset);
            TarHeaderBlock.WriteNumber(header.AsSpan(386 + (i * 24) + 12, 12), 512);
        }

        header[482] = 1;
        TarHeaderBlock.WriteNumber(header.AsSpan(TarHeaderBlock.GnuRealSize), realSize);
        TarHeaderBlock.WriteChecksum(header);
        byte[] extension = new byte[512];
        for (int i = 0; i < 2; i++)
        {
            TarHeaderBlock.WriteNumber(extension.AsSpan(i * 24, 12), regions[4 + i].Offset);
            TarHeaderBlock.WriteNumber(extension.AsSpan((i * 24) + 12, 12), 512);
        }

        using var tar = new MemoryStream();
        tar.Write(header);
        tar.Write(extension);
        foreach ((_, byte[] data) in regions)
        {
            tar.Write(data);
        }

        tar.Write(new byte[1024]);
        return (tar.ToArray(), regions, realSize);
    }

    /// <summary>A header block (ustar or GNU magic) with its checksum.</summary>
    internal static byte[] Block(byte[] name, byte type, long size, bool gnu)
    {
        byte[] block = new byte[512];
        name.AsSpan(0, Math.Min(100, name.Length)).CopyTo(block);
        TarHeaderBlock.WriteNumber(block.AsSpan(TarHeaderBlock.Mode), 0x1A4);
        TarHeaderBlock.WriteNumber(block.AsSpan(TarHeaderBlock.Uid), 0);
        TarHeaderBlock.WriteNumber(block.AsSpan(TarHeaderBlock.Gid), 0);
        TarHeaderBlock.WriteNumber(block.AsSpan(TarHeaderBlock.FileSize), size);
        TarHeaderBlock.WriteNumber(block.AsSpan(TarHeaderBlock.Mtime), Mtime);
        block[TarHeaderBlock.TypeFlag] = type;
        (gnu ? "ustar  \0"u8 : "ustar\u000000"u8).CopyTo(block.AsSpan(257));
        TarHeaderBlock.WriteChecksum(block);
        return block;
    }

    private static void WriteExtension(Stream tar, byte type, byte[] data)
    {
        tar.Write(Block(B("././@LongLink"), type, data.Length, gnu: true));
        tar.Write(data);
        tar.Write(new byte[(512 - (data.Length % 512)) % 512]);
    }

    /// <summary>A header followed by <c>length</c> zero bytes made on demand (never held in memory).</summary>
    private sealed class GeneratedStream(byte[] header, long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => header.Length + length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            int n = (int)Math.Min(count, Length - _position);
            for (int i = 0; i < n; i++)
            {
                buffer[offset + i] = _position + i < header.Length ? header[_position + i] : (byte)0;
            }

            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
