namespace BlockDriver.NbdBench;

/// <summary>One fio result: bytes per second and operations per second.</summary>
internal readonly record struct Measurement(double BytesPerSecond, double Iops)
{
    public double MBps => BytesPerSecond / 1e6;

    public static Measurement Median(IEnumerable<Measurement> runs)
    {
        Measurement[] sorted = [.. runs.OrderBy(m => m.BytesPerSecond)];
        return sorted[sorted.Length / 2];
    }
}
