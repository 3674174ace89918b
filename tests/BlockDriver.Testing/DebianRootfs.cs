using System.Diagnostics;

namespace BlockDriver.Testing;

/// <summary>
/// A Debian 12 root file system for tests that need a real distribution image (the Docker and containerd end-to-end
/// suites): <c>debootstrap --variant=minbase --include=python3,make,gcc,libc6-dev,libcap2-bin bookworm</c> from
/// Debian's archive, about 510 MB in 11,000 files, made once per machine in <see cref="TestCache"/> (about 50 s) and
/// shared by every test and test assembly. libcap2-bin is there so that image builds, which have no network, can
/// <c>setcap</c>. Setting <c>BLOCKDRIVER_DEBIAN_ROOTFS</c> to an existing rootfs directory skips debootstrap.
/// Needs root, debootstrap (.ci/run installs it) and the network to the archive; fails with what is missing.
/// </summary>
public static class DebianRootfs
{
    /// <summary>Names an existing rootfs directory to use instead of running debootstrap.</summary>
    public const string EnvironmentVariable = "BLOCKDRIVER_DEBIAN_ROOTFS";

    private const string Mirror = "http://deb.debian.org/debian";

    private static readonly string[] DebootstrapArgs =
        ["--variant=minbase", "--include=python3,make,gcc,libc6-dev,libcap2-bin", "bookworm"];

    private static readonly TimeSpan DebootstrapTimeout = TimeSpan.FromMinutes(20);

    private static readonly TimeSpan TarTimeout = TimeSpan.FromMinutes(5);

    /// <summary>The rootfs directory (owned by root; tests must not change it).</summary>
    /// <exception cref="InvalidOperationException">debootstrap is missing or failed (no network); the message says
    /// which, with its last output lines.</exception>
    public static async Task<string> DirectoryAsync(Action<string> log, CancellationToken ct)
    {
        string? given = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(given))
        {
            if (!Directory.Exists(Path.Combine(given, "etc")))
            {
                throw new InvalidOperationException($"{EnvironmentVariable}={given} is not a rootfs directory (no etc/ in it)");
            }

            return given;
        }

        string name = $"debian-bookworm-minbase-{TestCache.ShortHash([Mirror, .. DebootstrapArgs])}";
        string entry = await TestCache.GetOrCreateAsync(name, async (temp, token) =>
        {
            string debootstrap = Locate("debootstrap")
                ?? throw new InvalidOperationException("debootstrap is not installed: apt-get install debootstrap (.ci/run installs it)");
            string target = Path.Combine(temp, "rootfs");
            log($"debootstrap {string.Join(' ', DebootstrapArgs)} into {target} (about a minute)");
            var watch = Stopwatch.StartNew();
            await RunAsync(debootstrap, [.. DebootstrapArgs, target, Mirror], log, DebootstrapTimeout,
                "debootstrap failed: it needs root and the network to Debian's archive (" + Mirror + ")", token);
            log($"debootstrap took {watch.Elapsed.TotalSeconds:0} s");
        }, log, DebootstrapTimeout + TimeSpan.FromMinutes(2), ct);
        return Path.Combine(entry, "rootfs");
    }

    /// <summary>The rootfs as a tar that <c>docker import</c> takes: numeric owners, every xattr kept (file
    /// capabilities), entries named <c>./PATH</c>. Made once beside the rootfs; tests must not change it.</summary>
    /// <exception cref="InvalidOperationException">As <see cref="DirectoryAsync"/>, or tar failed.</exception>
    public static async Task<string> TarAsync(Action<string> log, CancellationToken ct)
    {
        string directory = await DirectoryAsync(log, ct);
        string name = $"debian-bookworm-minbase-tar-{TestCache.ShortHash(Path.GetFullPath(directory))}";
        string entry = await TestCache.GetOrCreateAsync(name, async (temp, token) =>
        {
            log($"tar of {directory}");
            await RunAsync("tar", ["--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", directory, "-cf",
                Path.Combine(temp, "rootfs.tar"), "."], log, TarTimeout, $"tar of {directory} failed", token);
        }, log, TarTimeout + TimeSpan.FromMinutes(2), ct);
        return Path.Combine(entry, "rootfs.tar");
    }

    private static string? Locate(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin"])
            .Select(directory => Path.Combine(directory, tool))
            .FirstOrDefault(File.Exists);

    /// <summary>Runs a program to its end within <paramref name="timeout"/>, killing it (and what it started) past
    /// that or on cancellation; throws with <paramref name="failure"/> and its last output lines unless it exits 0.</summary>
    private static async Task RunAsync(string program, IEnumerable<string> args, Action<string> log, TimeSpan timeout,
        string failure, CancellationToken ct)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var tail = new Queue<string>();
        void Add(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (tail)
            {
                tail.Enqueue(line);
                if (tail.Count > 20)
                {
                    tail.Dequeue();
                }
            }
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start");
        process.OutputDataReceived += (_, e) => Add(e.Data);
        process.ErrorDataReceived += (_, e) => Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            ct.ThrowIfCancellationRequested();
            throw new TimeoutException($"{failure}: still running after {timeout.TotalMinutes:0} min");
        }

        // The output events may still be draining after the exit.
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            string lines;
            lock (tail)
            {
                lines = string.Join('\n', tail);
            }

            log($"{program} exited {process.ExitCode}:\n{lines}");
            throw new InvalidOperationException($"{failure} (exit {process.ExitCode}):\n{lines}");
        }
    }
}
