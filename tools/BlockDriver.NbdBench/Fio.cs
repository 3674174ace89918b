using System.Globalization;
using System.Text.Json;

namespace BlockDriver.NbdBench;

/// <summary>Runs one fio job, on a block device with libaio and O_DIRECT or on an NBD URI with fio's NBD engine, and
/// reads its JSON report.</summary>
internal static class Fio
{
    public static async Task<Measurement> RunAsync(string device, Workload workload, int seconds, long sizeBytes, bool nbdEngine = false)
    {
        string[] target = nbdEngine ? ["--ioengine=nbd", "--uri=" + device] : ["--filename=" + device, "--ioengine=libaio", "--direct=1"];
        string json = await Shell.RunAsync("fio",
            [
            "--name=" + workload.Name,
            .. target,
            "--rw=" + workload.ReadWrite,
            "--bs=" + workload.BlockSize,
            "--iodepth=" + workload.IoDepth.ToString(CultureInfo.InvariantCulture),
            "--time_based",
            "--runtime=" + seconds.ToString(CultureInfo.InvariantCulture),
            "--ramp_time=1",
            "--size=" + sizeBytes.ToString(CultureInfo.InvariantCulture),
            "--randrepeat=0",
            "--output-format=json",
            ]).ConfigureAwait(false);

        // fio may print warnings before the JSON document.
        using JsonDocument report = JsonDocument.Parse(json[json.IndexOf('{', StringComparison.Ordinal)..]);
        JsonElement job = report.RootElement.GetProperty("jobs")[0].GetProperty(workload.IsWrite ? "write" : "read");
        return new Measurement(job.GetProperty("bw_bytes").GetDouble(), job.GetProperty("iops").GetDouble());
    }
}
