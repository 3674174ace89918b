using System.Globalization;

namespace BlockDriver.DockerBench;

/// <summary>Command-line settings: <c>--runs N --run-runs N --rm-containers N --containers N --write-mib M</c>.</summary>
internal sealed record BenchOptions
{
    /// <summary>Timed repetitions per driver of the import, the builds and the <c>docker rm -f</c> step.</summary>
    public int Runs { get; init; } = 5;

    /// <summary><c>docker run --rm IMAGE true</c> runs per driver.</summary>
    public int RunRuns { get; init; } = 20;

    /// <summary>Running containers that one timed <c>docker rm -f</c> removes.</summary>
    public int RmContainers { get; init; } = 5;

    /// <summary>Containers started per driver for the space figures (0: none).</summary>
    public int Containers { get; init; } = 5;

    /// <summary>MiB of random data each of those containers writes.</summary>
    public int WriteMiB { get; init; } = 16;

    public const string Usage =
        "Options: --runs N (default 5) --run-runs N (default 20) " +
        "--rm-containers N (default 5) --containers N (default 5) --write-mib M (default 16).";

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
                "--run-runs" => options with { RunRuns = number },
                "--rm-containers" => options with { RmContainers = number },
                "--containers" => options with { Containers = number },
                "--write-mib" => options with { WriteMiB = number },
                _ => throw new ArgumentException($"unknown option {args[i]}. {Usage}"),
            };
            i++;
        }

        return options is { Runs: >= 1 and <= 100, RunRuns: >= 1 and <= 1000, RmContainers: >= 1 and <= 50, Containers: >= 0 and <= 100, WriteMiB: >= 0 and <= 4096 }
            ? options
            : throw new ArgumentException("--runs must be 1 to 100, --run-runs 1 to 1000, --rm-containers 1 to 50, --containers 0 to 100, --write-mib 0 to 4096.");
    }
}
