using System.Text;

namespace BlockDriver.Bench;

/// <summary>Formats the results as an aligned plain-text table or as Markdown, followed by the chain-depth read
/// ratio and the notes that say what was measured.</summary>
/// <param name="Options">The settings of the invocation.</param>
/// <param name="Measurements">Every (device, workload) pair, grouped by workload, baseline first in each group.</param>
/// <param name="SequentialRequests">1 MiB requests per sequential workload.</param>
/// <param name="RandomRequests">4 KiB requests per random workload.</param>
/// <param name="WorkDirectory">Where the files were.</param>
/// <param name="FileSystem">The work directory's file system type.</param>
/// <param name="Setup">Time taken to write the prepared devices.</param>
/// <param name="LoadBefore">The host's 1-minute load average before the timed runs.</param>
/// <param name="IndexNotes">One line per chain describing its merged index.</param>
internal sealed record ReportWriter(
    BenchOptions Options,
    IReadOnlyList<Measurement> Measurements,
    long SequentialRequests,
    int RandomRequests,
    string WorkDirectory,
    string FileSystem,
    TimeSpan Setup,
    string LoadBefore,
    IReadOnlyList<string> IndexNotes)
{
    private static readonly string[] Headings = ["device", "workload", "MB/s", "IOPS", "vs raw", "spread"];

    public void Write(TextWriter output)
    {
        var text = new StringBuilder();
        bool md = Options.Markdown;
        text.AppendLine(Invariant($"BlockDriver.Bench: {FormatSize(Options.Size)} per device, median of {Options.Runs} run{(Options.Runs == 1 ? "" : "s")}, queue depth {Options.QueueDepth}, seed {Options.Seed}"));
        if (md)
        {
            text.AppendLine();
        }

        text.AppendLine(Invariant($"{HostInfo.Describe()}; load average {LoadBefore} before, {HostInfo.LoadAverage()} after; work dir {WorkDirectory} ({FileSystem}); setup {Setup.TotalSeconds:F1} s"));
        text.AppendLine();

        List<string[]> rows = [.. Measurements.Select(Row)];
        if (md)
        {
            WriteMarkdownTable(text, rows);
        }
        else
        {
            WritePlainTable(text, rows);
        }

        text.AppendLine();
        foreach (string line in DepthRatios())
        {
            text.AppendLine(md ? line + "  " : line);
        }

        text.AppendLine();
        text.AppendLine("Notes:");
        text.AppendLine();
        foreach (string note in Notes())
        {
            text.AppendLine(md ? $"- {note}" : Wrap("- " + note, 110, "  "));
        }

        output.Write(text.ToString());
    }

    private static string Invariant(FormattableString value) => FormattableString.Invariant(value);

    private static string FormatSize(long bytes) =>
        bytes % (1L << 30) == 0 ? Invariant($"{bytes >> 30} GiB") : Invariant($"{bytes >> 20} MiB");

    private static void WritePlainTable(StringBuilder text, List<string[]> rows)
    {
        int[] widths = [.. Headings.Select((h, c) => rows.Select(r => r[c].Length).Append(h.Length).Max())];
        string Line(string[] cells) => string.Join("  ", cells.Select((cell, c) => c < 2 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))).TrimEnd();

        text.AppendLine(Line(Headings));
        text.AppendLine(string.Join("  ", widths.Select(w => new string('-', w))));
        string? group = null;
        foreach (string[] row in rows)
        {
            if (group is not null && row[1] != group)
            {
                text.AppendLine();
            }

            group = row[1];
            text.AppendLine(Line(row));
        }
    }

    private static void WriteMarkdownTable(StringBuilder text, List<string[]> rows)
    {
        text.AppendLine("| " + string.Join(" | ", Headings) + " |");
        text.AppendLine("|" + string.Join("|", Headings.Select((_, c) => c < 2 ? "---" : "--:")) + "|");
        foreach (string[] row in rows)
        {
            text.AppendLine("| " + string.Join(" | ", row) + " |");
        }
    }

    // Breaks a note at spaces so that no line exceeds width; continuation lines get the indent.
    private static string Wrap(string line, int width, string indent)
    {
        var wrapped = new StringBuilder();
        int column = 0;
        foreach (string word in line.Split(' '))
        {
            if (column > 0 && column + 1 + word.Length > width)
            {
                wrapped.AppendLine();
                wrapped.Append(indent);
                column = indent.Length;
            }
            else if (column > 0)
            {
                wrapped.Append(' ');
                column++;
            }

            wrapped.Append(word);
            column += word.Length;
        }

        return wrapped.ToString();
    }

    private string[] Row(Measurement m)
    {
        Measurement baseline = Measurements.First(b => b.Workload == m.Workload && b.Target.IsBaseline);
        return
        [
            m.Target.IsBaseline ? m.Target.Name + " (baseline)" : m.Target.Name,
            m.Workload.Name,
            Invariant($"{m.MegabytesPerSecond:F1}"),
            Invariant($"{m.Iops:N0}"),
            Invariant($"{m.MegabytesPerSecond / baseline.MegabytesPerSecond:F2}"),
            m.Samples.Count > 1 ? Invariant($"{m.Spread * 100:F1}%") : "-",
        ];
    }

    // "depth-64 read / depth-1 read = 0.xx" for each read workload: the cost of a deep chain, independent of the
    // raw baseline. Uses the deepest and shallowest chains measured (64 and 1 by default).
    private IEnumerable<string> DepthRatios()
    {
        List<int> depths = [.. Measurements.Select(m => m.Target.ChainDepth).OfType<int>().Distinct().Order()];
        if (depths.Count < 2)
        {
            yield break;
        }

        int low = depths[0];
        int high = depths[^1];
        foreach (Workload workload in Workload.All.Where(w => !w.IsWrite))
        {
            Measurement deep = Measurements.First(m => m.Workload == workload && m.Target.ChainDepth == high);
            Measurement shallow = Measurements.First(m => m.Workload == workload && m.Target.ChainDepth == low);
            yield return Invariant($"depth-{high} read / depth-{low} read = {deep.MegabytesPerSecond / shallow.MegabytesPerSecond:F2} ({workload.Name}; {deep.MegabytesPerSecond:F1} / {shallow.MegabytesPerSecond:F1} MB/s)");
        }
    }

    private IEnumerable<string> Notes()
    {
        yield return "MB/s counts 10^6 bytes; IOPS is requests per second; \"vs raw\" divides by the raw file's MB/s for the same workload in this run; \"spread\" is (fastest - slowest) / median rate over the runs.";
        yield return Invariant($"A pass is {SequentialRequests} requests of 1 MiB covering the device in order (sequential) or {RandomRequests} requests of 4 KiB at offsets drawn with seed {Options.Seed}, the same for every device (random). A read run repeats its pass until {Options.MinReadTime.TotalSeconds:0.##} s have passed; a write run is one pass. Queue depth {Options.QueueDepth}: {(Options.QueueDepth == 1 ? "one request at a time, each awaited before the next" : $"{Options.QueueDepth} concurrent workers, each awaiting its own requests")}.");
        yield return "Reads: the host page cache is warm for every read row alike, the raw baseline included (all data was written just before and fits in RAM; caches cannot be dropped reliably without root). The reads therefore measure the driver's CPU and system-call path rather than the disk, which is what makes the ratios meaningful.";
        yield return "Writes: each run writes to a fresh, empty device (a sparse raw file, a new dynamic VHDX, a new differencing child on top of the chain) and its time includes the final FlushAsync (fsync; for VHDX also the metadata commit through the log).";
        yield return "Chain depth N: the dynamic VHDX as base, holding all data, plus N differencing layers; 1 MiB unit u is rewritten in layer u mod (N+1) (0 = base only), so the data a read at the top returns lies in any of the N+1 files. The top file resolves its own sectors; the rest is looked up in the parents' merged index, built once when the disk is opened (outside the timing), so no read walks the chain. Reads of every device were checked against the layer that should answer before timing.";
        foreach (string note in IndexNotes)
        {
            yield return note;
        }
    }
}
