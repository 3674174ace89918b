using System.Globalization;

namespace BlockDriver.NbdBench;

/// <summary>Command-line settings: <c>--runs N --seconds S --depth D --size-mib M --work DIR</c>.</summary>
internal sealed record BenchOptions
{
    public int Runs { get; init; } = 3;

    public int Seconds { get; init; } = 8;

    public int Depth { get; init; } = 3;

    public int SizeMiB { get; init; } = 1024;

    public string? WorkDirectory { get; init; }

    public static BenchOptions Parse(string[] args)
    {
        var options = new BenchOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value.");
            options = args[i] switch
            {
                "--runs" => options with { Runs = int.Parse(value, CultureInfo.InvariantCulture) },
                "--seconds" => options with { Seconds = int.Parse(value, CultureInfo.InvariantCulture) },
                "--depth" => options with { Depth = int.Parse(value, CultureInfo.InvariantCulture) },
                "--size-mib" => options with { SizeMiB = int.Parse(value, CultureInfo.InvariantCulture) },
                "--work" => options with { WorkDirectory = value },
                _ => throw new ArgumentException($"Unknown option {args[i]}. Options: --runs N --seconds S --depth D --size-mib M --work DIR."),
            };
            i++;
        }

        if (options.Runs < 1 || options.Seconds < 1 || options.Depth < 1 || options.SizeMiB < 256)
        {
            throw new ArgumentException("--runs, --seconds and --depth must be positive, --size-mib at least 256.");
        }

        return options;
    }
}
