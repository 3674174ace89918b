using System.Globalization;

namespace BlockDriver.Mount.Tar;

/// <summary>The 512-byte header block of a tar archive (POSIX.1-1988 ustar, with GNU's variant): field offsets,
/// numbers in octal or base-256, the checksum.</summary>
/// <remarks>
/// Layout (offset, length): name 0,100; mode 100,8; uid 108,8; gid 116,8; size 124,12; mtime 136,12; chksum 148,8;
/// typeflag 156; linkname 157,100; magic 257,6; version 263,2; uname 265,32; gname 297,32; devmajor 329,8;
/// devminor 337,8; then ustar's prefix 345,155, or GNU's atime 345,12, ctime 357,12, offset 369,12, longnames 381,4,
/// unused 385, four sparse (offset 12, numbytes 12) pairs at 386, isextended 482, realsize 483,12.
/// </remarks>
internal static class TarHeaderBlock
{
    public const int Size = 512;

    public static readonly Range Name = 0..100;
    public static readonly Range Mode = 100..108;
    public static readonly Range Uid = 108..116;
    public static readonly Range Gid = 116..124;
    public static readonly Range FileSize = 124..136;
    public static readonly Range Mtime = 136..148;
    public static readonly Range Checksum = 148..156;
    public const int TypeFlag = 156;
    public static readonly Range LinkName = 157..257;
    public static readonly Range Magic = 257..263;
    public static readonly Range Version = 263..265;
    public static readonly Range DevMajor = 329..337;
    public static readonly Range DevMinor = 337..345;
    public static readonly Range Prefix = 345..500;
    public const int GnuSparseOffset = 386;
    public const int GnuSparsePairs = 4;
    public const int GnuIsExtended = 482;
    public static readonly Range GnuRealSize = 483..495;

    /// <summary>A GNU sparse extension block: 21 (offset, numbytes) pairs of 12 bytes each, isextended at 504.</summary>
    public const int GnuExtensionPairs = 21;
    public const int GnuExtensionIsExtended = 504;

    /// <summary>Whether the magic is POSIX ustar's ("ustar\0"), whose prefix field extends the name.</summary>
    public static bool IsUstar(ReadOnlySpan<byte> block) => block[Magic].SequenceEqual("ustar\0"u8);

    /// <summary>Whether the magic is GNU tar's ("ustar " + " \0").</summary>
    public static bool IsGnu(ReadOnlySpan<byte> block) => block[Magic].SequenceEqual("ustar "u8) && block[Version].SequenceEqual(" \0"u8);

    /// <summary>A NUL-terminated string field: the bytes before the first NUL.</summary>
    public static byte[] String(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        return (end < 0 ? field : field[..end]).ToArray();
    }

    /// <summary>Whether the checksum matches: the sum of the block's bytes with the checksum field counted as
    /// spaces, as unsigned bytes or (some old writers) signed ones.</summary>
    public static bool ChecksumMatches(ReadOnlySpan<byte> block)
    {
        if (!TryParseNumber(block[Checksum], out long stored))
        {
            return false;
        }

        (long unsigned, long signed) = Sums(block);
        return stored == unsigned || stored == signed;
    }

    /// <summary>Writes the checksum of a finished block ("%06o\0 ").</summary>
    public static void WriteChecksum(Span<byte> block)
    {
        (long unsigned, _) = Sums(block);
        Span<byte> field = block[Checksum];
        string digits = Convert.ToString(unsigned, 8).PadLeft(6, '0');
        for (int i = 0; i < 6; i++)
        {
            field[i] = (byte)digits[i];
        }

        field[6] = 0;
        field[7] = (byte)' ';
    }

    /// <summary>Parses a numeric field: octal digits (leading and trailing spaces and NULs ignored; empty is 0),
    /// or GNU's base-256 (first byte's high bit set: big-endian two's complement of the remaining bits).</summary>
    public static bool TryParseNumber(ReadOnlySpan<byte> field, out long value)
    {
        value = 0;
        if (field.Length > 0 && (field[0] & 0x80) != 0)
        {
            byte invert = (field[0] & 0x40) != 0 ? (byte)0xff : (byte)0;
            ulong x = 0;
            for (int i = 0; i < field.Length; i++)
            {
                byte c = (byte)(field[i] ^ invert);
                if (i == 0)
                {
                    c &= 0x7f;
                }

                if ((x >> 56) != 0)
                {
                    return false; // more than 64 bits
                }

                x = (x << 8) | c;
            }

            if ((x >> 63) != 0)
            {
                return false;
            }

            value = invert == 0xff ? ~(long)x : (long)x;
            return true;
        }

        ReadOnlySpan<byte> digits = field.Trim(" \0"u8);
        foreach (byte c in digits)
        {
            if (c is < (byte)'0' or > (byte)'7' || value > (long.MaxValue >> 3))
            {
                return false;
            }

            value = (value << 3) | (uint)(c - '0');
        }

        return true;
    }

    /// <summary>Writes <paramref name="value"/> into a numeric field: octal with a terminating NUL when it fits
    /// (length - 1 digits), else base-256; false when negative and not base-256-able (never for our callers).</summary>
    public static void WriteNumber(Span<byte> field, long value)
    {
        if (value >= 0 && value < 1L << (3 * (field.Length - 1)))
        {
            string digits = Convert.ToString(value, 8).PadLeft(field.Length - 1, '0');
            for (int i = 0; i < digits.Length; i++)
            {
                field[i] = (byte)digits[i];
            }

            field[^1] = 0;
            return;
        }

        // Base-256, big-endian two's complement, marker bit 0x80 in the first byte.
        ulong x = (ulong)value;
        for (int i = field.Length - 1; i >= 0; i--)
        {
            field[i] = (byte)x;
            x = value < 0 ? (x >> 8) | 0xff00_0000_0000_0000 : x >> 8;
        }

        field[0] |= 0x80;
    }

    /// <summary>Whether a number fits its field in octal (else it needs a PAX record or base-256).</summary>
    public static bool FitsOctal(long value, int fieldLength) => value >= 0 && value < 1L << (3 * (fieldLength - 1));

    /// <summary>Formats an octal number for messages.</summary>
    public static string Octal(long value) => Convert.ToString(value, 8).ToString(CultureInfo.InvariantCulture);

    private static (long Unsigned, long Signed) Sums(ReadOnlySpan<byte> block)
    {
        long unsigned = 0;
        long signed = 0;
        for (int i = 0; i < Size; i++)
        {
            byte c = i >= 148 && i < 156 ? (byte)' ' : block[i];
            unsigned += c;
            signed += (sbyte)c;
        }

        return (unsigned, signed);
    }
}
