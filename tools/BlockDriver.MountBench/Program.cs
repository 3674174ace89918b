using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using BlockDriver.MountBench;

// fio on a file in a mounted container layer (blockdriver daemon; image chains of depth 1 and --depth) next to, in the
// same run, ext4 on a loop device over a raw sparse file and over qemu-nbd + nbdfuse serving the equivalent qcow2
// chains; then the copy-up test against qemu and overlayfs. Runs are interleaved (every setup once per run), each
// run on a fresh container layer / qcow2 top. Needs root, fio, qemu-utils, nbdfuse, e2fsprogs, loop, FUSE, overlayfs.
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
{
    Console.Error.WriteLine("mountbench: " + e.Message);
    return 2;
}

using var cancel = new CancellationTokenSource();
CancellationToken ct = cancel.Token;
// Ctrl-C / SIGTERM: stop the current step and tear everything down (the servers run in their own sessions, so the
// terminal's SIGINT does not reach them first).
using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

string work = options.WorkDirectory ?? Directory.CreateTempSubdirectory("blockdriver-mountbench-").FullName;
Directory.CreateDirectory(work);
var clock = Stopwatch.StartNew();
int exitCode = 1;
try
{
    Console.WriteLine($"mountbench: {BenchOptions.FormatSize(options.Size)} fio file, {BenchOptions.FormatSize(options.CopyUpSize)} copy-up file, "
        + $"ext4 of {BenchOptions.FormatSize(options.Capacity)}, depths 1 and {options.Depth}, {options.Runs} runs of {options.Seconds} s per job, in {work}");
    var results = new Dictionary<(string Setup, string Workload), List<Measurement>>();
    var copyUps = new List<CopyUp.Result>();

    Progress("raw file: mkfs.ext4, writing the image's files");
    RawSetup raw = await RawSetup.CreateAsync(work, options, ct);
    Progress($"qcow2 chain: converting the raw image, {options.Depth - 1} more layers");
    IReadOnlyList<string> qcow = await QemuSetup.CreateChainAsync(work, raw.RawFile, options.Depth, ct);

    BlockDriverDaemon daemon = await BlockDriverDaemon.StartAsync(Path.Combine(work, "store"), ct);
    await using (daemon)
    {
        Progress($"blockdriver store: image layer with the files, {options.Depth - 1} more sealed layers");
        IReadOnlyList<string> layers = await BlockDriverSetup.CreateChainAsync(daemon, Path.Combine(work, "mnt-build"), options, options.Depth, ct);
        string mountDirectory = Path.Combine(work, "mnt-blockdriver");
        Setup[] setups =
        [
            raw,
            new QemuSetup(work, qcow[0], 1),
            new QemuSetup(work, qcow[^1], options.Depth),
            new BlockDriverSetup(daemon, mountDirectory, layers[0], 1),
            new BlockDriverSetup(daemon, mountDirectory, layers[^1], options.Depth),
        ];

        for (int run = 1; run <= options.Runs; run++)
        {
            foreach (Setup setup in setups)
            {
                Session session = await setup.OpenAsync(run, ct);
                await using (session)
                {
                    foreach (Workload workload in Workload.All)
                    {
                        Measurement m = await Fio.RunAsync(Path.Combine(session.Directory, TestData.FioFile), options.Size, workload, options.Seconds, session.ServerPids, ct);
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"run {run} {setup.Label,-16} {workload.Name,-14} {m.MBps,9:F1} MB/s {m.Iops,9:F0} IOPS {m.CpuMicrosecondsPerIo,7:F1} µs CPU/IO"));
                        (results.TryGetValue((setup.Label, workload.Name), out List<Measurement>? list) ? list : results[(setup.Label, workload.Name)] = []).Add(m);
                    }
                }
            }
        }

        Progress("copy-up test");
        copyUps.Add(await CopyUp.BlockDriverAsync(daemon, work, layers[0], ct));
        copyUps.Add(await CopyUp.QemuAsync(work, qcow[0], ct));
        copyUps.Add(await CopyUp.OverlayAsync(work, options, ct));

        var report = new Report(options, setups, results);
        Console.WriteLine();
        Console.Write(report.Throughput());
        Console.WriteLine();
        Console.Write(Report.CopyUpTable(copyUps, options));
        Console.WriteLine();
        Console.Write(report.Targets(copyUps[0]));
    }

    exitCode = 0;
}
catch (OperationCanceledException) when (ct.IsCancellationRequested)
{
    Console.Error.WriteLine("mountbench: interrupted; cleaning up");
    exitCode = 130;
}
catch (Exception e)
{
    Console.Error.WriteLine("mountbench: " + e);
}
finally
{
    IReadOnlyList<string> leftovers = await Leftovers.SweepAsync(work);
    foreach (string leftover in leftovers)
    {
        Console.Error.WriteLine("mountbench: cleaned up a leftover: " + leftover);
        exitCode = exitCode == 0 ? 1 : exitCode;
    }

    if (options.WorkDirectory is null)
    {
        Directory.Delete(work, recursive: true);
    }

    Console.WriteLine($"mountbench: {clock.Elapsed:hh\\:mm\\:ss} in all");
}

return exitCode;

void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    Console.Error.WriteLine($"mountbench: {context.Signal}; stopping");
    cancel.Cancel();
}

void Progress(string what) => Console.WriteLine($"[{clock.Elapsed:mm\\:ss}] {what}");
