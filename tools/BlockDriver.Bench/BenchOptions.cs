using System.Globalization;

namespace BlockDriver.Bench;

/// <summary>Command-line settings of one benchmark invocation.</summary>
internal sealed record BenchOptions
{
    public const string Usage = """
        usage: BlockDriver.Bench [options]

        Measures sequential 1 MiB and random 4 KiB read/write throughput through IBlockDevice of a raw file (the
        baseline), a dynamic VHDX and differencing chains, and prints MB/s, IOPS and the ratio to the raw file.

          --size SIZE      bytes per device; K, M, G suffixes (powers of 1024); a multiple of 1M   [256M]
          --runs N         timed runs per row; the median is reported                               [3]
          --qd N           queue depth: N concurrent requests per device                            [1]
          --depths LIST    comma-separated chain depths (differencing layers over the base)         [1,8,64]
          --min-time SEC   each read run repeats its pass until SEC seconds have passed             [1]
          --seed N         seed of the random offsets and of the data                               [42]
          --dir PATH       parent of the work directory, which is created inside it and deleted
                           afterwards                                      [/var/tmp, else the current dir]
          --quick          smoke test: --size 16M --runs 1 --min-time 0.1 unless given
          --markdown       print the table as Markdown (for README.md)
          -h, --help       this text
        """;

    /// <summary>Bytes per device (virtual size of every VHDX, length of the raw file); a multiple of 1 MiB.</summary>
    public long Size { get; init; } = 256L * 1024 * 1024;

    public int Runs { get; init; } = 3;

    public int QueueDepth { get; init; } = 1;

    public IReadOnlyList<int> Depths { get; init; } = [1, 8, 64];

    /// <summary>Shortest duration of a timed read run (whole passes are repeated until it is reached).</summary>
    public TimeSpan MinReadTime { get; init; } = TimeSpan.FromSeconds(1);

    public int Seed { get; init; } = 42;

    public string? Directory { get; init; }

    public bool Quick { get; init; }

    public bool Markdown { get; init; }

    /// <summary>Parses <paramref name="args"/>; returns null and sets <paramref name="error"/> (null for --help)
    /// when the program should print the usage and stop.</summary>
    public static BenchOptions? Parse(string[] args, out string? error)
    {
        var options = new BenchOptions();
        long? size = null;
        int? runs = null;
        TimeSpan? minReadTime = null;
        error = null;
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                string arg = args[i];
                switch (arg)
                {
                    case "--size":
                        size = ParseSize(Value(args, ref i));
                        break;
                    case "--runs":
                        runs = ParsePositive(arg, Value(args, ref i));
                        break;
                    case "--qd":
                        options = options with { QueueDepth = ParsePositive(arg, Value(args, ref i)) };
                        break;
                    case "--depths":
                        options = options with
                        {
                            Depths = [.. Value(args, ref i).Split(',').Select(d => ParsePositive(arg, d)).Distinct().Order()],
                        };
                        break;
                    case "--min-time":
                        minReadTime = ParseSeconds(arg, Value(args, ref i));
                        break;
                    case "--seed":
                        options = options with { Seed = int.Parse(Value(args, ref i), CultureInfo.InvariantCulture) };
                        break;
                    case "--dir":
                        options = options with { Directory = Value(args, ref i) };
                        break;
                    case "--quick":
                        options = options with { Quick = true };
                        break;
                    case "--markdown":
                        options = options with { Markdown = true };
                        break;
                    case "-h" or "--help":
                        return null;
                    default:
                        error = $"unknown argument '{arg}'";
                        return null;
                }
            }
        }
        catch (FormatException e)
        {
            error = e.Message;
            return null;
        }

        return options with
        {
            Size = size ?? (options.Quick ? 16L * 1024 * 1024 : options.Size),
            Runs = runs ?? (options.Quick ? 1 : options.Runs),
            MinReadTime = minReadTime ?? (options.Quick ? TimeSpan.FromSeconds(0.1) : options.MinReadTime),
        };
    }

    /// <summary>Parses "256M", "1G", "4096" (suffixes are powers of 1024); the result is a positive multiple of 1 MiB,
    /// so that the sequential 1 MiB requests tile the device.</summary>
    public static long ParseSize(string text)
    {
        long multiplier = char.ToUpperInvariant(text.Length > 0 ? text[^1] : ' ') switch
        {
            'K' => 1024,
            'M' => 1024 * 1024,
            'G' => 1024 * 1024 * 1024,
            _ => 1,
        };
        string digits = multiplier == 1 ? text : text[..^1];
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long value)
            || value <= 0 || value > long.MaxValue / multiplier || value * multiplier % (1024 * 1024) != 0)
        {
            throw new FormatException($"--size '{text}' must be a positive multiple of 1M, e.g. 256M or 1G");
        }

        return value * multiplier;
    }

    private static string Value(string[] args, ref int i) =>
        ++i < args.Length ? args[i] : throw new FormatException($"{args[i - 1]} needs a value");

    private static TimeSpan ParseSeconds(string name, string text) =>
        double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value) && value >= 0 && value <= 3600
            ? TimeSpan.FromSeconds(value)
            : throw new FormatException($"{name} '{text}' must be a number of seconds from 0 to 3600");

    private static int ParsePositive(string name, string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0
            ? value
            : throw new FormatException($"{name} '{text}' must be a positive integer");
}
