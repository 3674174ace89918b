using System.Diagnostics;
using BlockDriver.Bench;

// Usage: see BenchOptions.Usage. Progress goes to stderr, the report to stdout (so --markdown output can be
// redirected into a file as is). Exit code 0, 1 when the run failed, 2 for bad arguments.
BenchOptions? options = BenchOptions.Parse(args, out string? error);
if (options is null)
{
    await (error is null ? Console.Out : Console.Error).WriteLineAsync(error is null ? BenchOptions.Usage : $"{error}\n\n{BenchOptions.Usage}");
    return error is null ? 0 : 2;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // Stop at the next request and still delete the work directory.
    e.Cancel = true;
    cancel.Cancel();
};

TextWriter log = Console.Error;
var total = Stopwatch.StartNew();
using WorkDirectory work = WorkDirectory.Create(options.Directory);
try
{
    await log.WriteLineAsync($"preparing devices in {work.Path}");
    var setup = Stopwatch.StartNew();
    BenchFixture fixture = await BenchFixture.BuildAsync(work.Path, options.Size, options.Depths, options.Seed, log, cancel.Token);
    await fixture.VerifyAsync(cancel.Token);
    setup.Stop();

    // A quarter of the device's 4 KiB slots (at least 256): enough requests for a stable rate, few enough that
    // the 64 MiB written at the default size stays well inside the page cache.
    int randomRequests = (int)Math.Max(256, options.Size / Workload.RandomIoSize / 4);
    string loadBefore = HostInfo.LoadAverage();
    using var buffers = new IoBuffers(options.QueueDepth, options.Seed);
    var runner = new BenchRunner(fixture.Targets, options.Size, randomRequests, buffers, options.Seed, options.MinReadTime);
    IReadOnlyList<Measurement> measurements = await runner.RunAsync(options.Runs, log, cancel.Token);

    new ReportWriter(options, measurements, runner.SequentialRequests, runner.RandomRequests, work.Path,
        work.FileSystemType(), setup.Elapsed, loadBefore, fixture.IndexNotes).Write(Console.Out);
    await log.WriteLineAsync($"total {total.Elapsed.TotalSeconds:F1} s; deleting {work.Path}");
    return 0;
}
catch (OperationCanceledException) when (cancel.IsCancellationRequested)
{
    await log.WriteLineAsync($"cancelled; deleting {work.Path}");
    return 1;
}
