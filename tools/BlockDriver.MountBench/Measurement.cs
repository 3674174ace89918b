namespace BlockDriver.MountBench;

/// <summary>One fio result: bytes and operations per second, the operations done, and the CPU seconds the serving
/// processes (blockdriver daemon; qemu-nbd + nbdfuse; none for the raw loop) used meanwhile.</summary>
internal readonly record struct Measurement(double BytesPerSecond, double Iops, long Ios, double ServerCpuSeconds)
{
    public double MBps => BytesPerSecond / 1e6;

    /// <summary>Server CPU microseconds per I/O.</summary>
    public double CpuMicrosecondsPerIo => Ios == 0 ? 0 : ServerCpuSeconds * 1e6 / Ios;

    /// <summary>The median run by throughput (the run itself, so its CPU figure belongs to it).</summary>
    public static Measurement Median(IEnumerable<Measurement> runs)
    {
        Measurement[] sorted = [.. runs.OrderBy(m => m.BytesPerSecond)];
        return sorted[sorted.Length / 2];
    }
}
