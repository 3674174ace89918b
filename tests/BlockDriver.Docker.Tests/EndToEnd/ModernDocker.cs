using System.Globalization;

namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>
/// Docker as it is today, for the tests of the path modern Docker takes: Debian 13's docker.io (dockerd 26), docker-cli
/// (the client), docker-buildx (the client's BuildKit builder) and containerd (1.7, with its runc shim), fetched with
/// <c>apt-get download</c> against a private sources list naming trixie (Debian's archive, signed by the archive
/// keyring of debian-archive-keyring) and unpacked with <c>dpkg -x</c> into the test cache: nothing is installed
/// system-wide and no system apt state changes. Made once per machine (about 15 s) like <see cref="DebianRootfs"/>.
/// runc comes from the system (Debian 12's runc package: trixie's is linked against a newer glibc).
/// </summary>
internal static class ModernDocker
{
    private const string Archive = "http://deb.debian.org/debian";
    private const string Suite = "trixie";
    private const string Keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    private static readonly string[] Packages = ["docker.io", "docker-cli", "docker-buildx", "containerd"];

    /// <summary>The unpacked packages' root directory (<c>usr/sbin/dockerd</c>, <c>usr/bin/containerd</c> ...).</summary>
    /// <exception cref="InvalidOperationException">apt-get or dpkg failed (no network to the archive): the message
    /// says which command and what it printed.</exception>
    public static async Task<string> RootAsync(Action<string> log, CancellationToken ct = default)
    {
        string name = $"docker-{Suite}-{TestCache.ShortHash([Archive, Suite, .. Packages])}";
        string entry = await TestCache.GetOrCreateAsync(name, async (temp, token) =>
        {
            if (!File.Exists(Keyring))
            {
                throw new InvalidOperationException($"{Keyring} is missing: apt-get install debian-archive-keyring");
            }

            string apt = Path.Combine(temp, "apt");
            string sources = Path.Combine(apt, "sources.list");
            Directory.CreateDirectory(Path.Combine(apt, "lists", "partial"));
            Directory.CreateDirectory(Path.Combine(apt, "cache", "archives", "partial"));
            await File.WriteAllTextAsync(sources, $"deb [signed-by={Keyring}] {Archive} {Suite} main\n", token);
            string[] options =
            [
                "-o", "Dir::Etc::SourceList=" + sources, "-o", "Dir::Etc::SourceParts=/dev/null",
                "-o", "Dir::State::Lists=" + Path.Combine(apt, "lists"), "-o", "Dir::Cache=" + Path.Combine(apt, "cache"),

                // The private directories are root's (0700): apt's download sandbox user could not write them.
                "-o", "APT::Sandbox::User=root", "-q",
            ];
            await RunOkAsync("apt-get", [.. options, "update"], apt, log);
            string debs = Path.Combine(temp, "debs");
            Directory.CreateDirectory(debs);
            await RunOkAsync("apt-get", [.. options, "download", .. Packages], debs, log);
            string root = Path.Combine(temp, "root");
            foreach (string deb in Directory.GetFiles(debs, "*.deb").Order(StringComparer.Ordinal))
            {
                log($"unpacking {Path.GetFileName(deb)}");
                await RunOkAsync("dpkg", ["-x", deb, root], debs, log);
            }

            await File.WriteAllLinesAsync(Path.Combine(temp, "packages.txt"),
                Directory.GetFiles(debs, "*.deb").Select(Path.GetFileName).Order(StringComparer.Ordinal)!, token);
            Directory.Delete(debs, recursive: true);
            Directory.Delete(apt, recursive: true);
            foreach (string program in new[] { "usr/sbin/dockerd", "usr/bin/docker", "usr/bin/containerd", "usr/bin/containerd-shim-runc-v2", "usr/libexec/docker/cli-plugins/docker-buildx" })
            {
                if (!File.Exists(Path.Combine(root, program)))
                {
                    throw new InvalidOperationException($"{program} is not in the unpacked packages {string.Join(", ", Packages)}");
                }
            }
        }, log, TimeSpan.FromMinutes(10), ct);
        log("modern Docker from " + string.Join(", ", await File.ReadAllLinesAsync(Path.Combine(entry, "packages.txt"), ct)));
        return Path.Combine(entry, "root");
    }

    /// <summary>dockerd 26 and its client, with PATH leading to the unpacked containerd and shim (and the system's
    /// runc after them).</summary>
    public static async Task<DockerInstall> InstallAsync(Action<string> log, CancellationToken ct = default)
    {
        string root = await RootAsync(log, ct);
        string path = string.Join(':', Path.Combine(root, "usr/bin"), Path.Combine(root, "usr/sbin"), Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin");
        CommandResult version = await Command.RunAsync(Path.Combine(root, "usr/sbin/dockerd"), ["--version"], TimeSpan.FromSeconds(30));
        if (version.ExitCode != 0)
        {
            throw new InvalidOperationException($"the unpacked dockerd does not run here:\n{version}");
        }

        return new DockerInstall(version.Stdout.Trim().Replace("Docker version ", "dockerd ", StringComparison.Ordinal),
            Path.Combine(root, "usr/sbin/dockerd"), Path.Combine(root, "usr/bin/docker"),
            new Dictionary<string, string> { ["PATH"] = path }, Path.Combine(root, "usr/libexec/docker/cli-plugins"))
        {
            Containerd = Path.Combine(root, "usr/bin/containerd"),
        };
    }

    private static async Task RunOkAsync(string program, string[] args, string directory, Action<string> log)
    {
        ProcessResult result = await ChildProcess.RunAsync(program, args, directory);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"{program} {string.Join(' ', args)} failed (is {Archive} reachable?): {result}"));
        }

        log($"{program} {args[^1]}: done");
    }
}
