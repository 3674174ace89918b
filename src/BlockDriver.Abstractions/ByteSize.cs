using System.Globalization;

namespace BlockDriver.Abstractions;

/// <summary>Sizes as users write and read them: <c>512</c>, <c>64K</c>, <c>10G</c> (binary multiples, as qemu-img
/// takes them) and "10 GiB". Shared by the CLI and the daemon's front ends (the Docker plugin's <c>docker info</c>
/// lines and messages).</summary>
public static class ByteSize
{
    private static readonly string[] Units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

    /// <summary>Parses a byte count: digits, optionally followed by K, M, G, T or P (case-insensitive, powers of
    /// 1024) and an optional B or iB (<c>2M</c>, <c>2MiB</c> and <c>2097152</c> are the same).</summary>
    /// <param name="text">The text given.</param>
    /// <param name="what">What the size is for, named in the error ("size", "--block-size").</param>
    /// <exception cref="BlockDriverException">InvalidArgument: not a size, zero, or too large.</exception>
    public static long Parse(string text, string what)
    {
        string s = text.Trim();
        int digits = 0;
        while (digits < s.Length && char.IsAsciiDigit(s[digits]))
        {
            digits++;
        }

        string suffix = s[digits..].ToUpperInvariant();
        if (suffix.EndsWith("IB", StringComparison.Ordinal) && suffix.Length == 3)
        {
            suffix = suffix[..1];
        }
        else if (suffix.EndsWith('B') && suffix.Length == 2)
        {
            suffix = suffix[..1];
        }

        int shift = suffix switch
        {
            "" or "B" => 0,
            "K" => 10,
            "M" => 20,
            "G" => 30,
            "T" => 40,
            "P" => 50,
            _ => -1,
        };
        if (digits == 0 || shift < 0 || !long.TryParse(s.AsSpan(0, digits), NumberStyles.None, CultureInfo.InvariantCulture, out long value))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"invalid {what} '{text}': expected a number of bytes, optionally with a suffix K, M, G or T (e.g. 512M, 10G).");
        }

        if (value == 0)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"invalid {what} '{text}': must be positive.");
        }

        if (value > long.MaxValue >> shift)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"invalid {what} '{text}': too large.");
        }

        return value << shift;
    }

    /// <summary>Formats with the largest binary unit that keeps the value at least 1, up to two decimals:
    /// "0 B", "4 KiB", "1.5 GiB".</summary>
    public static string Format(long bytes)
    {
        double value = bytes;
        int unit = 0;
        while (Math.Abs(value) >= 1024 && unit < Units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return $"{value.ToString("0.##", CultureInfo.InvariantCulture)} {Units[unit]}";
    }

    /// <summary>"10 GiB (10737418240 bytes)", or just "512 bytes" below 1 KiB.</summary>
    public static string FormatWithBytes(long bytes) =>
        bytes < 1024
            ? string.Create(CultureInfo.InvariantCulture, $"{bytes} bytes")
            : string.Create(CultureInfo.InvariantCulture, $"{Format(bytes)} ({bytes} bytes)");
}
