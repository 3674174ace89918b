using BlockDriver.Abstractions;

namespace BlockDriver.Bench;

/// <summary>Runs the workloads against the targets: an untimed warm-up (JIT, bitmap-page caches), then
/// <c>runs</c> rounds, each timing every workload on every target in turn, so that slow drift of the host affects
/// all rows alike. Reads use the prepared data and repeat their pass for at least <c>minReadTime</c>; every write
/// run gets a fresh empty device, deleted afterwards.</summary>
internal sealed class BenchRunner(IReadOnlyList<BenchTarget> targets, long size, int randomRequests, IoBuffers buffers, int seed,
    TimeSpan minReadTime)
{
    private const int WarmUpRequests = 32;

    private readonly long[] _randomOffsets = RandomOffsets(size, randomRequests, seed);

    public long SequentialRequests { get; } = size / Workload.SequentialIoSize;

    public int RandomRequests => _randomOffsets.Length;

    public async Task<IReadOnlyList<Measurement>> RunAsync(int runs, TextWriter log, CancellationToken ct)
    {
        var measurements = new List<Measurement>();
        foreach (Workload workload in Workload.All)
        {
            foreach (BenchTarget target in targets)
            {
                measurements.Add(new Measurement(target, workload, workload.IsRandom ? RandomRequests : SequentialRequests));
            }
        }

        await log.WriteLineAsync("warm-up (untimed)");
        foreach (Measurement m in measurements)
        {
            await MeasureAsync(m.Target, m.Workload, Math.Min(m.RequestsPerPass, WarmUpRequests), TimeSpan.Zero, ct);
        }

        for (int run = 1; run <= runs; run++)
        {
            await log.WriteAsync($"run {run}/{runs}:");
            foreach (BenchTarget target in targets)
            {
                foreach (Measurement m in measurements.Where(m => m.Target == target))
                {
                    m.Add(await MeasureAsync(target, m.Workload, m.RequestsPerPass, minReadTime, ct));
                }

                await log.WriteAsync($" {target.Name} ✓");
            }

            await log.WriteLineAsync();
        }

        return measurements;
    }

    private static long[] RandomOffsets(long size, int count, int seed)
    {
        var random = new Random(seed);
        long slots = size / Workload.RandomIoSize;
        var offsets = new long[count];
        for (int i = 0; i < count; i++)
        {
            offsets[i] = random.NextInt64(slots) * Workload.RandomIoSize;
        }

        return offsets;
    }

    private async Task<Sample> MeasureAsync(BenchTarget target, Workload workload, long requests, TimeSpan minTime,
        CancellationToken ct)
    {
        if (!workload.IsWrite)
        {
            await using (IBlockDevice reader = target.OpenReader())
            {
                return await IoLoop.RunAsync(reader, workload, requests, _randomOffsets, buffers, minTime, ct);
            }
        }

        try
        {
            await using (IBlockDevice writer = await target.CreateWriterAsync(ct))
            {
                return await IoLoop.RunAsync(writer, workload, requests, _randomOffsets, buffers, minTime, ct);
            }
        }
        finally
        {
            target.DeleteWriter();
        }
    }
}
