using System.CommandLine;
using BlockDriver.Abstractions;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary>Arguments and options several layer commands share, and their parsing.</summary>
internal static class LayerOptions
{
    /// <summary>The LAYER argument.</summary>
    public static Argument<string> Id(string description = "The layer id.") => new("ID") { Description = description };

    /// <summary>A repeatable --label K=V option.</summary>
    public static Option<string[]> Labels() => new("--label")
    {
        Description = "A label KEY=VALUE (repeatable).",
        HelpName = "KEY=VALUE",
        AllowMultipleArgumentsPerToken = false,
    };

    /// <summary>Parses KEY=VALUE pairs.</summary>
    public static Dictionary<string, string> ParseLabels(IEnumerable<string>? pairs)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string pair in pairs ?? [])
        {
            int equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument, $"label \"{pair}\" is not KEY=VALUE.");
            }

            labels[pair[..equals]] = pair[(equals + 1)..];
        }

        return labels;
    }
}
