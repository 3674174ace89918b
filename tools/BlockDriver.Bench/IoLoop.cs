using System.Diagnostics;
using BlockDriver.Abstractions;

namespace BlockDriver.Bench;

/// <summary>The timed part: <see cref="IoBuffers.Count"/> workers (the queue depth) each await one request at a
/// time and take the next request index from a shared counter, so that a pass issues exactly <c>count</c>
/// requests in total. Nothing is allocated per request here; what the device allocates is part of what is
/// measured.</summary>
internal static class IoLoop
{
    /// <summary>Runs whole passes of <paramref name="count"/> requests of <paramref name="workload"/> against
    /// <paramref name="device"/>: a write workload one pass followed by FlushAsync, all inside the timing; a read
    /// workload as many passes as it takes to reach <paramref name="minReadTime"/>. Request i of a pass goes to
    /// <paramref name="randomOffsets"/>[i] for a random workload, else to i × IoSize.</summary>
    public static async Task<Sample> RunAsync(IBlockDevice device, Workload workload, long count, long[] randomOffsets,
        IoBuffers buffers, TimeSpan minReadTime, CancellationToken ct)
    {
        long[]? offsets = workload.IsRandom ? randomOffsets : null;
        long requests = 0;
        var stopwatch = Stopwatch.StartNew();
        do
        {
            await PassAsync(device, workload, count, offsets, buffers, ct);
            requests += count;
        }
        while (!workload.IsWrite && stopwatch.Elapsed < minReadTime);

        if (workload.IsWrite)
        {
            await device.FlushAsync(ct);
        }

        stopwatch.Stop();
        return new Sample(requests, stopwatch.Elapsed);
    }

    private static async Task PassAsync(IBlockDevice device, Workload workload, long count, long[]? offsets,
        IoBuffers buffers, CancellationToken ct)
    {
        var next = new Counter();
        if (buffers.Count == 1)
        {
            await WorkerAsync(device, workload, count, offsets, buffers.Get(0, workload.IoSize), next, ct);
            return;
        }

        var workers = new Task[buffers.Count];
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = WorkerAsync(device, workload, count, offsets, buffers.Get(i, workload.IoSize), next, ct);
        }

        await Task.WhenAll(workers);
    }

    private static async Task WorkerAsync(IBlockDevice device, Workload workload, long count, long[]? offsets,
        Memory<byte> buffer, Counter next, CancellationToken ct)
    {
        int ioSize = workload.IoSize;
        bool write = workload.IsWrite;
        while (true)
        {
            long i = Interlocked.Increment(ref next.Value) - 1;
            if (i >= count)
            {
                return;
            }

            long offset = offsets is null ? i * ioSize : offsets[i];
            if (write)
            {
                await device.WriteAsync(offset, buffer, ct: ct);
            }
            else
            {
                await device.ReadAsync(offset, buffer, ct);
            }
        }
    }

    private sealed class Counter
    {
        public long Value;
    }
}
