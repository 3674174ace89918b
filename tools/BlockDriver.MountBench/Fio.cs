using System.Globalization;
using System.Text.Json;

namespace BlockDriver.MountBench;

/// <summary>Runs one fio job on an existing file with io_uring, iodepth 16 and O_DIRECT, and reads its JSON report.
/// The file must already be laid out (fio is told not to create it), so every setup reads the same bytes.</summary>
internal static class Fio
{
    public const int IoDepth = 16;

    /// <summary>Runs <paramref name="workload"/> on <paramref name="file"/> for <paramref name="seconds"/> and samples
    /// the CPU time of <paramref name="serverPids"/> just before and after.</summary>
    public static async Task<Measurement> RunAsync(string file, long size, Workload workload, int seconds, IReadOnlyList<int> serverPids, CancellationToken ct)
    {
        string[] args =
        [
            "--name=" + workload.Name,
            "--filename=" + file,
            "--allow_file_create=0",
            "--size=" + size.ToString(CultureInfo.InvariantCulture),
            "--rw=" + workload.ReadWrite,
            "--bs=" + workload.BlockSize,
            "--ioengine=io_uring",
            "--iodepth=" + IoDepth.ToString(CultureInfo.InvariantCulture),
            "--direct=1",
            "--time_based",
            "--runtime=" + seconds.ToString(CultureInfo.InvariantCulture),
            "--randrepeat=0",
            "--output-format=json",
        ];
        double cpuBefore = ProcessCpu.Seconds(serverPids);
        string json = await Shell.RunAsync("fio", args, ct).ConfigureAwait(false);
        double cpuAfter = ProcessCpu.Seconds(serverPids);

        // fio may print warnings before the JSON document.
        using JsonDocument report = JsonDocument.Parse(json[json.IndexOf('{', StringComparison.Ordinal)..]);
        JsonElement job = report.RootElement.GetProperty("jobs")[0];
        if (job.GetProperty("error").GetInt32() != 0)
        {
            throw new InvalidOperationException($"fio {workload.Name} on {file} reported error {job.GetProperty("error").GetInt32()}.");
        }

        JsonElement io = job.GetProperty(workload.IsWrite ? "write" : "read");
        return new Measurement(io.GetProperty("bw_bytes").GetDouble(), io.GetProperty("iops").GetDouble(),
            io.GetProperty("total_ios").GetInt64(), cpuAfter - cpuBefore);
    }
}
