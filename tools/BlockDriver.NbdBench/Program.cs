using System.Globalization;
using BlockDriver.NbdBench;

// fio over nbdfuse + loop against the BlockDriver NBD server (VHDX chain) and qemu-nbd (qcow2 chain of the same depth
// and data), interleaved in one run; medians of --runs runs, one set of rows per --connections value. Each server's
// multi-conn advertisement is checked with nbdinfo, and the connections nbdfuse really opens are printed, so the two
// servers are compared with the same number of connections. Needs root, fio, nbdfuse, nbdinfo, qemu-utils.
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
    Console.WriteLine($"nbdbench: chain depth {options.Depth}, {options.SizeMiB} MiB, {options.Runs} runs of {options.Seconds} s per workload, nbdfuse -C {string.Join(',', options.Connections)}, in {work}");
    (string vhdx, string qcow2) = await Chains.CreateAsync(work, options);
    long size = (long)options.SizeMiB * 1024 * 1024;
    var results = new Dictionary<(int Connections, string Target, string Workload), List<Measurement>>();
    var effective = new Dictionary<(int Connections, string Target), int>();
    for (int run = 1; run <= options.Runs; run++)
    {
        foreach (int connections in options.FioNbdEngine ? [1] : options.Connections)
        {
            foreach (string name in new[] { "blockdriver", "qemu-nbd" })
            {
                string socket = Path.Combine(work, name + ".sock");
                Target target = name == "blockdriver" ? Target.StartOurs(vhdx, socket) : await Target.StartQemuNbdAsync(qcow2, socket);
                await using (target)
                {
                    if (options.FioNbdEngine)
                    {
                        effective[(connections, name)] = 1;
                        foreach (Workload workload in Workload.All)
                        {
                            Record(run, name, 1, workload, await Fio.RunAsync(target.Uri, workload, options.Seconds, size, nbdEngine: true));
                        }

                        continue;
                    }

                    // nbdfuse falls back to one connection when the server does not advertise multi-conn.
                    bool multiConn = await target.CanMultiConnAsync();
                    int used = multiConn ? connections : 1;
                    effective[(connections, name)] = used;
                    Console.WriteLine($"run {run} {name,-12} nbdfuse -C {connections}: multi-conn {(multiConn ? "advertised" : "not advertised")}, {used} connection(s)");
                    LoopStack stack = await LoopStack.StartAsync(target.Uri, Path.Combine(work, "fuse-" + name), connections);
                    await using (stack)
                    {
                        foreach (Workload workload in Workload.All)
                        {
                            Record(run, name, connections, workload, await Fio.RunAsync(stack.Device, workload, options.Seconds, size));
                        }
                    }
                }
            }
        }
    }

    foreach (int connections in options.FioNbdEngine ? [1] : options.Connections)
    {
        int ours = effective[(connections, "blockdriver")];
        int theirs = effective[(connections, "qemu-nbd")];
        Console.WriteLine();
        Console.WriteLine(options.FioNbdEngine
            ? $"Medians of {options.Runs} runs (fio's NBD engine, one connection each, no nbdfuse or loop device; chain depth {options.Depth}):"
            : $"Medians of {options.Runs} runs (fio libaio O_DIRECT on loop over nbdfuse -C {connections}; connections used: blockdriver {ours}, qemu-nbd {theirs}; chain depth {options.Depth}):");
        if (ours != theirs)
        {
            Console.WriteLine("WARNING: the servers were reached over different numbers of connections; the ratios are not a like-for-like comparison.");
        }

        Console.WriteLine($"| workload | blockdriver MB/s | blockdriver IOPS | qemu-nbd MB/s | qemu-nbd IOPS | ratio |");
        Console.WriteLine($"| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (Workload workload in Workload.All)
        {
            Measurement a = Measurement.Median(results[(connections, "blockdriver", workload.Name)]);
            Measurement b = Measurement.Median(results[(connections, "qemu-nbd", workload.Name)]);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {workload.Name} | {a.MBps:F1} | {a.Iops:F0} | {b.MBps:F1} | {b.Iops:F0} | {a.BytesPerSecond / b.BytesPerSecond:F2} |"));
        }
    }

    return 0;

    void Record(int run, string name, int connections, Workload workload, Measurement m)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"run {run} {name,-12} C={connections} {workload.Name,-14} {m.MBps,9:F1} MB/s {m.Iops,10:F0} IOPS"));
        (results.TryGetValue((connections, name, workload.Name), out List<Measurement>? list)
            ? list
            : results[(connections, name, workload.Name)] = []).Add(m);
    }
}
finally
{
    if (options.WorkDirectory is null)
    {
        Directory.Delete(work, recursive: true);
    }
}
