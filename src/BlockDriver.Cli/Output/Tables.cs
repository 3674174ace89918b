using Spectre.Console;
using Spectre.Console.Rendering;

namespace BlockDriver.Cli.Output;

/// <summary>Human tables (Spectre.Console) on stdout. When stdout is not a terminal the table is written plain and
/// wide (no colour, no wrapping of 64-character ids), so it stays readable in logs and greppable in scripts.</summary>
internal static class Tables
{
    /// <summary>Writes a table with the given column headers and rows.</summary>
    public static void Write(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var table = new Table { Border = TableBorder.Simple };
        foreach (string header in headers)
        {
            table.AddColumn(new TableColumn(header) { NoWrap = true });
        }

        foreach (IReadOnlyList<string> row in rows)
        {
            table.AddRow([.. row.Select(cell => (IRenderable)new Text(cell))]);
        }

        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Console.Out),
            Ansi = Console.IsOutputRedirected ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = Console.IsOutputRedirected ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
        });
        if (Console.IsOutputRedirected)
        {
            console.Profile.Width = 400;
        }

        console.Write(table);
    }
}
