using System.Globalization;

namespace BlockDriver.NbdBench;

/// <summary>Command-line settings: <c>--runs N --seconds S --depth D --size-mib M --connections C[,C…] --path fuse|nbd
/// --work DIR</c>. Each connection count is one set of rows: nbdfuse is started with <c>-C C</c> against both servers.
/// <c>--path nbd</c> leaves nbdfuse and the loop device out: fio's own NBD engine talks to each server over one
/// connection, which measures the servers rather than the kernel path in front of them.</summary>
internal sealed record BenchOptions
{
    public int Runs { get; init; } = 3;

    public int Seconds { get; init; } = 8;

    public int Depth { get; init; } = 3;

    public int SizeMiB { get; init; } = 1024;

    public IReadOnlyList<int> Connections { get; init; } = [4];

    public string? WorkDirectory { get; init; }

    /// <summary>True for <c>--path nbd</c> (fio's NBD engine), false for the default <c>--path fuse</c>.</summary>
    public bool FioNbdEngine { get; init; }

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
                "--connections" => options with { Connections = [.. value.Split(',').Select(c => int.Parse(c, CultureInfo.InvariantCulture))] },
                "--work" => options with { WorkDirectory = value },
                "--path" => options with
                {
                    FioNbdEngine = value switch
                    {
                        "nbd" => true,
                        "fuse" => false,
                        _ => throw new ArgumentException("--path is fuse (fio on a loop device over nbdfuse) or nbd (fio's NBD engine)."),
                    },
                },
                _ => throw new ArgumentException($"Unknown option {args[i]}. Options: --runs N --seconds S --depth D --size-mib M --connections C[,C...] --path fuse|nbd --work DIR."),
            };
            i++;
        }

        if (options.Runs < 1 || options.Seconds < 1 || options.Depth < 1 || options.SizeMiB < 256
            || options.Connections.Count == 0 || options.Connections.Any(c => c < 1 || c > 8))
        {
            throw new ArgumentException("--runs, --seconds and --depth must be positive, --size-mib at least 256, --connections from 1 to 8.");
        }

        return options;
    }
}
