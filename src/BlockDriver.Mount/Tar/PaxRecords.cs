using System.Globalization;
using System.Text;
using BlockDriver.Abstractions;

namespace BlockDriver.Mount.Tar;

/// <summary>POSIX.1-2001 pax extended header records, "LEN KEY=VALUE\n" where LEN counts the whole record in
/// decimal, its own digits included. Length-prefixed, so a value may hold any byte (raw names, binary xattrs).</summary>
internal static class PaxRecords
{
    /// <summary>The records of a pax header's data, in order (a key may repeat: GNU sparse 0.0 pairs do).</summary>
    /// <exception cref="BlockDriverException">InvalidArgument for a malformed record.</exception>
    public static List<(byte[] Key, byte[] Value)> Parse(ReadOnlySpan<byte> data, string where)
    {
        var records = new List<(byte[], byte[])>();
        while (data.Length > 0)
        {
            if (data[0] == 0)
            {
                break; // NUL padding after the last record (written by some tools)
            }

            int space = data.IndexOf((byte)' ');
            if (space is <= 0 or > 20 || !long.TryParse(data[..space], NumberStyles.None, CultureInfo.InvariantCulture, out long length)
                || length <= space + 3 || length > data.Length)
            {
                throw Malformed(where, "a record's length is not a number that fits the header");
            }

            ReadOnlySpan<byte> record = data[(space + 1)..(int)length];
            if (record[^1] != '\n')
            {
                throw Malformed(where, "a record does not end with a newline");
            }

            record = record[..^1];
            int equals = record.IndexOf((byte)'=');
            if (equals <= 0)
            {
                throw Malformed(where, "a record has no key");
            }

            records.Add((record[..equals].ToArray(), record[(equals + 1)..].ToArray()));
            data = data[(int)length..];
        }

        return records;
    }

    /// <summary>Formats records for a pax header's data.</summary>
    public static byte[] Format(IEnumerable<(byte[] Key, byte[] Value)> records)
    {
        var output = new MemoryStream();
        foreach ((byte[] key, byte[] value) in records)
        {
            // " KEY=VALUE\n" plus the length's own digits, which may add a digit when they are counted.
            int rest = 1 + key.Length + 1 + value.Length + 1;
            int length = rest + Digits(rest);
            length = rest + Digits(length);
            output.Write(Encoding.ASCII.GetBytes(length.ToString(CultureInfo.InvariantCulture)));
            output.WriteByte((byte)' ');
            output.Write(key);
            output.WriteByte((byte)'=');
            output.Write(value);
            output.WriteByte((byte)'\n');
        }

        return output.ToArray();
    }

    /// <summary>A decimal record value as a number.</summary>
    public static long ParseNumber(ReadOnlySpan<byte> value, string key, string where) =>
        long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long number)
            ? number
            : throw Malformed(where, $"{key}=\"{ByteNames.Display(value)}\" is not a number");

    /// <summary>A pax time ("-?SECONDS(.FRACTION)?") as seconds and nanoseconds (0..999999999), rounding down.</summary>
    public static (long Seconds, uint Nanoseconds) ParseTime(ReadOnlySpan<byte> value, string where)
    {
        bool negative = value.Length > 0 && value[0] == '-';
        ReadOnlySpan<byte> rest = negative ? value[1..] : value;
        int dot = rest.IndexOf((byte)'.');
        ReadOnlySpan<byte> whole = dot < 0 ? rest : rest[..dot];
        ReadOnlySpan<byte> fraction = dot < 0 ? [] : rest[(dot + 1)..];
        if (whole.Length == 0 || !long.TryParse(whole, NumberStyles.None, CultureInfo.InvariantCulture, out long seconds)
            || fraction.ContainsAnyExceptInRange((byte)'0', (byte)'9'))
        {
            throw Malformed(where, $"mtime=\"{ByteNames.Display(value)}\" is not a time");
        }

        long nanoseconds = 0;
        for (int i = 0; i < 9; i++)
        {
            nanoseconds = (nanoseconds * 10) + (i < fraction.Length ? fraction[i] - '0' : 0);
        }

        if (!negative)
        {
            return (seconds, (uint)nanoseconds);
        }

        return nanoseconds == 0 ? (-seconds, 0u) : (-seconds - 1, (uint)(1_000_000_000 - nanoseconds));
    }

    /// <summary>Formats a time for a pax mtime record.</summary>
    public static byte[] FormatTime(long seconds, uint nanoseconds)
    {
        if (nanoseconds == 0)
        {
            return Encoding.ASCII.GetBytes(seconds.ToString(CultureInfo.InvariantCulture));
        }

        // A negative time with a fraction: -1.25 is (-2 s, 750000000 ns).
        string text = seconds >= 0
            ? $"{seconds.ToString(CultureInfo.InvariantCulture)}.{nanoseconds:D9}"
            : $"-{(-(seconds + 1)).ToString(CultureInfo.InvariantCulture)}.{1_000_000_000 - nanoseconds:D9}";
        return Encoding.ASCII.GetBytes(text);
    }

    private static int Digits(int value) => value.ToString(CultureInfo.InvariantCulture).Length;

    private static BlockDriverException Malformed(string where, string what) =>
        new(ErrorKind.InvalidArgument, $"layer tar: {where}: malformed PAX header: {what}.");
}
