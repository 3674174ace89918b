using System.Globalization;
using BlockDriver.Abstractions;

namespace BlockDriver.Docker;

/// <summary>Sizes as Docker's <c>--storage-opt size=</c> takes them (go-units <c>RAMInBytes</c>): a decimal number
/// and an optional binary unit k, m, g, t or p (1024-based), optionally followed by "b" or "ib", any case: "10G",
/// "512m", "20GB", "1.5GiB", "4096".</summary>
public static class DockerSize
{
    /// <summary>The bytes <paramref name="text"/> means.</summary>
    /// <exception cref="BlockDriverException">InvalidArgument when it is not a size or not above zero.</exception>
    public static long Parse(string text, string what)
    {
        ArgumentNullException.ThrowIfNull(text);
        string s = text.Trim().ToLowerInvariant();
        if (s.EndsWith("ib", StringComparison.Ordinal))
        {
            s = s[..^2];
        }
        else if (s.EndsWith('b'))
        {
            s = s[..^1];
        }

        int shift = s.Length > 0 ? s[^1] switch { 'k' => 10, 'm' => 20, 'g' => 30, 't' => 40, 'p' => 50, _ => 0 } : 0;
        if (shift > 0)
        {
            s = s[..^1];
        }

        if (!decimal.TryParse(s, NumberStyles.AllowDecimalPoint | NumberStyles.AllowTrailingWhite, CultureInfo.InvariantCulture, out decimal number) || number <= 0)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"{what} \"{text}\" is not a size: use a number with an optional unit k, m, g, t (1024-based), e.g. 10G.");
        }

        decimal bytes = number * (1L << shift);
        return bytes is >= 1 and <= long.MaxValue
            ? (long)bytes
            : throw new BlockDriverException(ErrorKind.InvalidArgument, $"{what} \"{text}\" is out of range.");
    }
}
