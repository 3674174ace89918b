namespace BlockDriver.Bench;

/// <summary>The timed runs of one workload on one device. Figures are medians over the runs.</summary>
internal sealed class Measurement(BenchTarget target, Workload workload, long requestsPerPass)
{
    private readonly List<Sample> _samples = [];

    public BenchTarget Target { get; } = target;

    public Workload Workload { get; } = workload;

    /// <summary>Requests in one pass: the whole device in 1 MiB requests, or one per random offset.</summary>
    public long RequestsPerPass { get; } = requestsPerPass;

    public IReadOnlyList<Sample> Samples => _samples;

    /// <summary>Median over the runs of megabytes (10^6 bytes) per second.</summary>
    public double MegabytesPerSecond => Median([.. _samples.Select(Rate)]);

    public double Iops => MegabytesPerSecond * 1e6 / Workload.IoSize;

    /// <summary>(fastest − slowest) / median rate: how far apart the runs were.</summary>
    public double Spread => (_samples.Max(Rate) - _samples.Min(Rate)) / MegabytesPerSecond;

    public void Add(Sample sample) => _samples.Add(sample);

    private double Rate(Sample s) => s.Requests * (double)Workload.IoSize / s.Elapsed.TotalSeconds / 1e6;

    private static double Median(double[] values)
    {
        Array.Sort(values);
        int middle = values.Length / 2;
        return values.Length % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
    }
}
