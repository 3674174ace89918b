using System.Globalization;
using BlockDriver.NbdBench;

// fio over nbdfuse + loop against the BlockDriver NBD server (VHDX chain) and qemu-nbd (qcow2 chain of the same depth
// and data), interleaved in one run; medians of --runs runs. Needs root, fio, nbdfuse, qemu-utils.
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine("nbdbench: " + e.Message);
    return 2;
}

string work = options.WorkDirectory ?? Directory.CreateTempSubdirectory("blockdriver-nbdbench-").FullName;
Directory.CreateDirectory(work);
try
{
    Console.WriteLine($"nbdbench: chain depth {options.Depth}, {options.SizeMiB} MiB, {options.Runs} runs of {options.Seconds} s per workload, in {work}");
    (string vhdx, string qcow2) = await Chains.CreateAsync(work, options);
    long size = (long)options.SizeMiB * 1024 * 1024;
    var results = new Dictionary<(string Target, string Workload), List<Measurement>>();
    for (int run = 1; run <= options.Runs; run++)
    {
        foreach (string name in new[] { "blockdriver", "qemu-nbd" })
        {
            string socket = Path.Combine(work, name + ".sock");
            Target target = name == "blockdriver" ? Target.StartOurs(vhdx, socket) : await Target.StartQemuNbdAsync(qcow2, socket);
            await using (target)
            {
                LoopStack stack = await LoopStack.StartAsync(target.Uri, Path.Combine(work, "fuse-" + name));
                await using (stack)
                {
                    foreach (Workload workload in Workload.All)
                    {
                        Measurement m = await Fio.RunAsync(stack.Device, workload, options.Seconds, size);
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"run {run} {name,-12} {workload.Name,-14} {m.MBps,9:F1} MB/s {m.Iops,10:F0} IOPS"));
                        (results.TryGetValue((name, workload.Name), out List<Measurement>? list) ? list : results[(name, workload.Name)] = []).Add(m);
                    }
                }
            }
        }
    }

    Console.WriteLine();
    Console.WriteLine($"Medians of {options.Runs} runs (fio libaio O_DIRECT on loop over nbdfuse -C 4; chain depth {options.Depth}):");
    Console.WriteLine($"| workload | blockdriver MB/s | blockdriver IOPS | qemu-nbd MB/s | qemu-nbd IOPS | ratio |");
    Console.WriteLine($"| --- | ---: | ---: | ---: | ---: | ---: |");
    foreach (Workload workload in Workload.All)
    {
        Measurement ours = Measurement.Median(results[("blockdriver", workload.Name)]);
        Measurement theirs = Measurement.Median(results[("qemu-nbd", workload.Name)]);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {workload.Name} | {ours.MBps:F1} | {ours.Iops:F0} | {theirs.MBps:F1} | {theirs.Iops:F0} | {ours.BytesPerSecond / theirs.BytesPerSecond:F2} |"));
    }

    return 0;
}
finally
{
    if (options.WorkDirectory is null)
    {
        Directory.Delete(work, recursive: true);
    }
}
