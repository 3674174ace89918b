using System.Globalization;

namespace BlockDriver.DockerBench;

/// <summary>Command-line settings: <c>--runs N --containers N --write-mib M</c>.</summary>
internal sealed record BenchOptions
{
    /// <summary><c>docker run --rm IMAGE true</c> runs per driver.</summary>
    public int Runs { get; init; } = 20;

    /// <summary>Containers started per driver for the space figures.</summary>
    public int Containers { get; init; } = 5;

    /// <summary>MiB of random data each of those containers writes.</summary>
    public int WriteMiB { get; init; } = 16;

    public const string Usage = "Options: --runs N (default 20) --containers N (default 5) --write-mib M (default 16).";

    public static BenchOptions Parse(string[] args)
    {
        var options = new BenchOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string value = i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{args[i]} needs a value. {Usage}");
            int number = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n)
                ? n
                : throw new ArgumentException($"{args[i]} {value}: not a whole number. {Usage}");
            options = args[i] switch
            {
                "--runs" => options with { Runs = number },
                "--containers" => options with { Containers = number },
                "--write-mib" => options with { WriteMiB = number },
                _ => throw new ArgumentException($"unknown option {args[i]}. {Usage}"),
            };
            i++;
        }

        return options is { Runs: >= 1 and <= 1000, Containers: >= 0 and <= 100, WriteMiB: >= 0 and <= 4096 }
            ? options
            : throw new ArgumentException("--runs must be 1 to 1000, --containers 0 to 100, --write-mib 0 to 4096.");
    }
}
