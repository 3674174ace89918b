using System.Globalization;

namespace BlockDriver.MountBench;

/// <summary>Command-line settings: <c>--size SIZE --runs N --seconds S --depth D --copy-up-size SIZE --work DIR</c>.
/// SIZE takes K, M, G (powers of 1024) or bytes.</summary>
internal sealed record BenchOptions
{
    /// <summary>Size of fio's file, laid out in the image layer.</summary>
    public long Size { get; init; } = 1L << 30;

    public int Runs { get; init; } = 3;

    public int Seconds { get; init; } = 10;

    /// <summary>Image layers under the container of the deep chain (the shallow one has 1).</summary>
    public int Depth { get; init; } = 10;

    /// <summary>Size of the file inherited from the image in which the copy-up test changes one byte.</summary>
    public long CopyUpSize { get; init; } = 1L << 30;

    /// <summary>Keep the work directory (and use this one) instead of a temporary one deleted at the end.</summary>
    public string? WorkDirectory { get; init; }

    /// <summary>The file system's capacity: both files, plus room for ext4's metadata and the journal.</summary>
    public long Capacity => RoundUp(Size + CopyUpSize + (Size + CopyUpSize) / 4 + (256L << 20), 1L << 30);

    public static BenchOptions Parse(string[] args)
    {
        var options = new BenchOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value.");
            options = args[i] switch
            {
                "--size" => options with { Size = ParseSize(value, "--size") },
                "--runs" => options with { Runs = int.Parse(value, CultureInfo.InvariantCulture) },
                "--seconds" => options with { Seconds = int.Parse(value, CultureInfo.InvariantCulture) },
                "--depth" => options with { Depth = int.Parse(value, CultureInfo.InvariantCulture) },
                "--copy-up-size" => options with { CopyUpSize = ParseSize(value, "--copy-up-size") },
                "--work" => options with { WorkDirectory = Path.GetFullPath(value) },
                _ => throw new ArgumentException($"Unknown option {args[i]}. Options: --size SIZE --runs N --seconds S --depth D --copy-up-size SIZE --work DIR."),
            };
            i++;
        }

        if (options.Runs < 1 || options.Seconds < 1 || options.Depth < 2 || options.Depth > 64)
        {
            throw new ArgumentException("--runs and --seconds must be positive, --depth from 2 to 64.");
        }

        if (options.Size < 64L << 20 || options.CopyUpSize < 1L << 20)
        {
            throw new ArgumentException("--size must be at least 64M and --copy-up-size at least 1M.");
        }

        return options;
    }

    public static string FormatSize(long bytes) => bytes switch
    {
        _ when bytes >= 1L << 30 && bytes % (1L << 30) == 0 => $"{bytes >> 30}G",
        _ when bytes >= 1L << 20 && bytes % (1L << 20) == 0 => $"{bytes >> 20}M",
        _ when bytes >= 1L << 10 && bytes % (1L << 10) == 0 => $"{bytes >> 10}K",
        _ => bytes.ToString(CultureInfo.InvariantCulture),
    };

    private static long ParseSize(string text, string option)
    {
        if (text.Length == 0)
        {
            throw new ArgumentException($"{option}: empty size.");
        }

        int shift = char.ToUpperInvariant(text[^1]) switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, _ => 0 };
        string digits = shift == 0 ? text : text[..^1];
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long number) || number <= 0 || number > long.MaxValue >> shift)
        {
            throw new ArgumentException($"{option}: '{text}' is not a size (1G, 512M, 65536).");
        }

        long bytes = number << shift;
        return bytes % 4096 == 0 ? bytes : throw new ArgumentException($"{option}: {text} is not a multiple of 4096.");
    }

    private static long RoundUp(long value, long unit) => (value + unit - 1) / unit * unit;
}
