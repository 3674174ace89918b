using BlockDriver.Docker.Tests.EndToEnd;
using BlockDriver.DockerBench;

// dockerd on the blockdriver graphdriver plugin against dockerd on overlay2, in one run on one machine, on a Debian 12
// image: docker import of the rootfs tar, the seed Dockerfile (FROM, COPY, RUN make with gcc, CMD) built cold and
// cached with the classic builder and BuildKit (--network none), docker run --rm IMAGE true, docker rm -f of N running
// containers; medians of several runs, the two drivers alternating, with the ratio to overlay2 against its target. Then
// N containers writing M MiB each, with docker ps -s / docker system df from both and blockdriver df. Starts and cleans
// up its own blockdriver daemon and dockerds under a temp directory. Needs root, docker.io, containerd, debootstrap (the
// Debian rootfs is made once per machine, or BLOCKDRIVER_DEBIAN_ROOTFS=DIR names one).
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine("dockerbench: " + e.Message);
    return 2;
}

string[] missing =
[
    .. Environment.UserName == "root" ? Array.Empty<string>() : ["root"],
    .. Dockerd.MissingPrograms(),
];
if (missing.Length > 0)
{
    Console.Error.WriteLine($"dockerbench: needs {string.Join(", ", missing)} (apt-get install docker.io containerd; run as root).");
    return 2;
}

string work = Directory.CreateTempSubdirectory("blockdriver-dockerbench-").FullName;
string logPath = work + ".log";
using var log = new StreamWriter(logPath) { AutoFlush = true };
var logLock = new Lock();
void Log(string line)
{
    lock (logLock)
    {
        log.WriteLine(line);
    }
}

Console.WriteLine($"dockerbench: {options.Runs} runs per step, {options.RunRuns} of docker run, rm -f of {options.RmContainers}, {options.Containers} containers writing {options.WriteMiB} MiB each, in {work} (log: {logPath})");
using var bench = new Bench(work, options, Log);
int status;
try
{
    await bench.RunAsync();
    status = bench.Failed ? 1 : 0;
}
catch (Exception e)
{
    Console.Error.WriteLine($"dockerbench: failed: {e}");
    status = 1;
}

IReadOnlyList<string> problems = await bench.CleanUpAsync();
foreach (string problem in problems)
{
    Console.Error.WriteLine("dockerbench: cleanup: " + problem);
}

Console.WriteLine(problems.Count == 0 ? "dockerbench: cleaned up: no mount, loop device, process or socket left" : $"dockerbench: see {logPath}");
return problems.Count == 0 ? status : 1;
