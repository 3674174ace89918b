using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using BlockDriver.Docker.Tests.EndToEnd;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>
/// Docker's everyday paths on a real distribution image (Debian 12 from debootstrap, 510 MB in 11,000 files), each
/// against the same dockerd on overlayfs doing the same thing: builds with the classic builder and with BuildKit
/// (every Dockerfile instruction, multi-stage COPY --from, ADD of a tar, file capabilities, the build cache),
/// docker commit of a running container, docker cp both ways, docker export, docker save and load both ways, docker
/// diff, docker ps -s and system df against the store's figures. Contents are compared entry by entry (path, type,
/// mode, owner, link target, size, content hash, xattrs), not by digests of tars. One subclass per
/// <see cref="DockerStack"/>, so every path Docker takes onto BlockDriver runs the same suite.
/// </summary>
[Collection(DockerEndToEndCollection.Name)]
public abstract class DebianImageTests<TFixture> : IClassFixture<TFixture>, IDisposable
    where TFixture : DebianImageFixture
{
    private const string Greeting = "hello from app.py\nbuilt with gcc\n";
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(4);
    private readonly TFixture _fixture;
    private readonly ITestOutputHelper _output;
    private readonly Stopwatch _watch = Stopwatch.StartNew();
    private readonly TempDirectory _work = new("debian-e2e");

    protected DebianImageTests(TFixture fixture, ITestOutputHelper output)
    {
        _fixture = fixture;
        _output = output;
        fixture.Attach(output);
        output.WriteLine($"stack: {fixture.Stack}");
    }

    private Dockerd Docker => _fixture.Env.Docker;

    private Dockerd Reference => _fixture.Reference;

    [DockerFact]
    public virtual Task The_seed_Dockerfile_builds_with_the_classic_builder_and_the_image_prints_its_greeting() => SeedAsync(buildKit: false);

    [DockerFact]
    public virtual Task The_seed_Dockerfile_builds_with_BuildKit_and_the_image_prints_its_greeting() => SeedAsync(buildKit: true);

    [DockerFact]
    public virtual Task A_Dockerfile_of_every_instruction_builds_with_the_classic_builder_the_layers_overlayfs_builds_and_again_from_the_cache() =>
        EveryInstructionAsync(buildKit: false);

    [DockerFact]
    public virtual Task A_Dockerfile_of_every_instruction_builds_with_BuildKit_the_layers_overlayfs_builds_and_again_from_the_cache() =>
        EveryInstructionAsync(buildKit: true);

    [DockerFact]
    public virtual async Task A_running_container_diffs_and_copies_in_and_out_as_on_overlayfs()
    {
        await using var live = await LiveAsync();
        string outOfImage = _work.GetFilePath("os-release");
        await Docker.RunOkAsync("cp", "live:/usr/lib/os-release", outOfImage);
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(_fixture.Rootfs, "usr/lib/os-release")), await File.ReadAllBytesAsync(outOfImage));
        string outOfLayer = _work.GetFilePath("new.txt");
        await Docker.RunOkAsync("cp", "live:/root/new.txt", outOfLayer);
        Assert.Equal("new\n", await File.ReadAllTextAsync(outOfLayer));
        Assert.Equal("copied in from the host\n", await Docker.RunOkAsync("exec", "live", "cat", "/root/copied.txt"));

        // docker diff: the same changes as overlayfs lists.
        string[] diff = Lines(await Docker.RunOkAsync("diff", "live"));
        Assert.Equal(Lines(await Reference.RunOkAsync("diff", "live")).Order(StringComparer.Ordinal), diff.Order(StringComparer.Ordinal));
        Assert.Contains("A /root/copied.txt", diff);
        Assert.Contains("D /usr/share/doc/make", diff);
    }

    [DockerFact]
    public virtual async Task A_running_container_commits_the_layer_overlayfs_commits()
    {
        await using var live = await LiveAsync();

        // docker commit pauses the running container meanwhile.
        foreach (Dockerd docker in new[] { Docker, Reference })
        {
            await docker.RunOkAsync("commit", "live", "live:1");
        }

        Assert.Equal("copied in from the host\nnew\n1000 2\n",
            await Docker.RunOkAsync("run", "--rm", "live:1", "sh", "-c", "cat /root/copied.txt /root/new.txt; stat -c '%u %h' /root/new.txt"));
        IReadOnlyList<IReadOnlyDictionary<string, string>> ours = await SavedLayersAsync(Docker, "live:1", "live-ours");
        IReadOnlyList<IReadOnlyDictionary<string, string>> theirs = await SavedLayersAsync(Reference, "live:1", "live-theirs");
        Assert.Equal(2, ours.Count);
        TarContent.AssertSameLayers([.. theirs.Select(l => Without(l, ContainerFiles))], [.. ours.Select(l => Without(l, ContainerFiles))],
            "live:1, committed from the running container", _output.WriteLine);
    }

    [DockerFact]
    public virtual async Task A_running_container_exports_the_file_system_overlayfs_exports()
    {
        await using var live = await LiveAsync();
        SortedDictionary<string, string> exportedOurs = await ExportAsync(Docker, "live", "export-ours.tar");
        SortedDictionary<string, string> exportedTheirs = await ExportAsync(Reference, "live", "export-theirs.tar");
        Assert.InRange(exportedOurs.Count, 10_000, 20_000);
        TarContent.AssertSame(Without(exportedTheirs, ContainerFiles), Without(exportedOurs, ContainerFiles), "docker export");
    }

    /// <summary>docker ps -s and system df against the store: on a graphdriver plugin SIZE is the plugin's DiffSize,
    /// the bytes of the files the container added or changed, counted as overlay2 counts them (each inode once,
    /// symlinks by their length), and GraphDriver.Data carries the store's size of the layer; on the snapshotter SIZE
    /// is the snapshot's Usage, the store's size of its layer.</summary>
    [DockerFact]
    public virtual async Task A_running_containers_sizes_in_ps_and_system_df_are_the_stores()
    {
        await using var live = await LiveAsync();
        long sizeRw = long.Parse((await Docker.RunOkAsync("container", "inspect", "--size", "--format", "{{.SizeRw}}", "live")).Trim(), CultureInfo.InvariantCulture);
        string id = (await Docker.RunOkAsync("container", "inspect", "--format", "{{.Id}}", "live")).Trim();
        IReadOnlyList<JsonElement> layers = await _fixture.Env.LayersAsync();
        if (_fixture.Stack.Snapshotter)
        {
            // The container's snapshot is keyed by its id (the store keeps the key in a label, after the namespace).
            JsonElement layer = Assert.Single(layers, l => l.GetProperty("labels").TryGetProperty("containerd.name", out JsonElement name) &&
                name.GetString()!.EndsWith("/" + id, StringComparison.Ordinal));
            _output.WriteLine($"container snapshot layer: {layer}");
            Assert.Equal(layer.GetProperty("size").GetInt64(), sizeRw);
        }
        else
        {
            long reference = long.Parse((await Reference.RunOkAsync("container", "inspect", "--size", "--format", "{{.SizeRw}}", "live")).Trim(), CultureInfo.InvariantCulture);
            Assert.Equal(reference, sizeRw);
            string mountId = File.ReadAllText(Path.Combine(Docker.DataRoot, "image", Docker.StorageDriver, "layerdb", "mounts", id, "mount-id")).Trim();
            JsonElement layer = Assert.Single(layers, l => l.GetProperty("id").GetString() == mountId);
            Assert.Equal($"{layer.GetProperty("size").GetInt64()}",
                (await Docker.RunOkAsync("container", "inspect", "--format", "{{.GraphDriver.Data.Size}}", "live")).Trim());
        }

        string ps = (await Docker.RunOkAsync("ps", "-s", "--filter", "name=live", "--format", "{{.Size}}")).Trim();
        Assert.StartsWith(HumanSize(sizeRw) + " (virtual ", ps, StringComparison.Ordinal);

        // system df's containers line sums the SIZE of every container: this one is the only one.
        string df = await Docker.RunOkAsync("system", "df", "--format", "{{.Type}}\t{{.Size}}");
        _output.WriteLine(df);
        _output.WriteLine(await _fixture.Env.Daemon.CliOkAsync("df"));
        Assert.Contains($"Containers\t{HumanSize(sizeRw, 4)}", Lines(df));
    }

    [DockerFact]
    public async Task An_image_saved_loads_into_overlayfs_and_back_with_identical_files()
    {
        await Docker.RunOkAsync("run", "--name", "seedling", DebianImageFixture.Image, "sh", "-c",
            "set -e; mkdir -p /opt/seedling; echo grown > /opt/seedling/a; ln -s a /opt/seedling/b; chmod 640 /opt/seedling/a; rm /etc/issue.net");
        await Docker.RunOkAsync("commit", "seedling", "seedling:1");
        await Docker.RunOkAsync("rm", "seedling");

        string first = _work.GetFilePath("first.tar");
        await Docker.RunOkAsync(null, TimeSpan.FromMinutes(4), "save", "-o", first, "seedling:1");
        await Reference.RunOkAsync(null, TimeSpan.FromMinutes(4), "load", "-i", first);
        string second = _work.GetFilePath("second.tar");
        await Reference.RunOkAsync(null, TimeSpan.FromMinutes(4), "save", "-o", second, "seedling:1");
        await Docker.RunOkAsync("rmi", "seedling:1");
        await Docker.RunOkAsync(null, TimeSpan.FromMinutes(4), "load", "-i", second);
        string third = _work.GetFilePath("third.tar");
        await Docker.RunOkAsync(null, TimeSpan.FromMinutes(4), "save", "-o", third, "seedling:1");

        IReadOnlyList<IReadOnlyDictionary<string, string>> saved = await TarContent.SavedLayersAsync(first, _work.GetFilePath("first"));
        IReadOnlyList<IReadOnlyDictionary<string, string>> viaReference = await TarContent.SavedLayersAsync(second, _work.GetFilePath("second"));
        IReadOnlyList<IReadOnlyDictionary<string, string>> back = await TarContent.SavedLayersAsync(third, _work.GetFilePath("third"));
        Assert.Equal(2, saved.Count);
        Assert.Equal(2, viaReference.Count);
        Assert.Equal(2, back.Count);
        TarContent.AssertSameLayers(saved, viaReference, "seedling:1 loaded into the reference", _output.WriteLine);
        TarContent.AssertSameLayers(saved, back, "seedling:1 loaded back", _output.WriteLine);

        Assert.Contains(".wh.issue.net", saved[1].Keys.Select(Path.GetFileName));
        Assert.Equal("grown\n", await Docker.RunOkAsync("run", "--rm", "seedling:1", "cat", "/opt/seedling/b"));
        Assert.Equal("grown\n", await Reference.RunOkAsync("run", "--rm", "seedling:1", "cat", "/opt/seedling/b"));
    }

    public void Dispose()
    {
        _output.WriteLine($"test took {_watch.Elapsed.TotalSeconds:F1} s");
        _work.Dispose();
    }

    // Files dockerd bind-mounts or writes per container: their contents name the container.
    private static readonly string[] ContainerFiles = ["etc/hostname", "etc/hosts", "etc/resolv.conf", ".dockerenv"];

    private static SortedDictionary<string, string> Without(IReadOnlyDictionary<string, string> entries, string[] names) =>
        new(entries.Where(e => !names.Contains(e.Key)).ToDictionary(), StringComparer.Ordinal);

    private async Task SeedAsync(bool buildKit)
    {
        string tag = buildKit ? "seed:buildkit" : "seed:classic";
        var watch = Stopwatch.StartNew();
        await BuildAsync(Docker, SeedContext("seed"), tag, buildKit);
        _output.WriteLine($"{tag} built in {watch.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(Greeting, await Docker.RunOkAsync("run", "--rm", tag));
    }

    private async Task EveryInstructionAsync(bool buildKit)
    {
        string context = FullContext(buildKit ? "full-buildkit" : "full-classic");
        string tag = buildKit ? "full:buildkit" : "full:classic";
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(BuildAsync(Docker, context, tag, buildKit), BuildAsync(Reference, context, tag, buildKit));
        _output.WriteLine($"{tag} built on both in {watch.Elapsed.TotalSeconds:F1} s");

        // What the image does: its user, environment, working directory, the binary of the first stage.
        const string Check = "id -u; echo $GREETING; pwd; hello; cat /tmp/user.txt; ls /srv/app/files; getcap /usr/local/bin/rawenv";
        string seen = await Docker.RunOkAsync("run", "--rm", tag, "sh", "-c", Check);
        Assert.Equal("1000\nhello from env\n/srv/app\nbuilt with gcc\nhello from env as 1000\na.txt\nsub\n/usr/local/bin/rawenv cap_net_raw=ep\n", seen);
        Assert.Equal(seen, await Reference.RunOkAsync("run", "--rm", tag, "sh", "-c", Check));

        // Every layer holds what the same build on overlayfs holds.
        IReadOnlyList<IReadOnlyDictionary<string, string>> ours = await SavedLayersAsync(Docker, tag, "ours");
        IReadOnlyList<IReadOnlyDictionary<string, string>> theirs = await SavedLayersAsync(Reference, tag, "theirs");
        TarContent.AssertSameLayers(theirs, ours, tag, _output.WriteLine);
        Assert.Contains(ours, layer => layer.TryGetValue("usr/local/bin/rawenv", out string? line) && line.Contains("security.capability=", StringComparison.Ordinal));

        // A second build reuses every step: the same layers (not the same image id: BuildKit's provenance attestation
        // in the containerd image store is made anew).
        string id = (await Docker.RunOkAsync("image", "inspect", "--format", "{{json .RootFS.Layers}}", tag)).Trim();
        string again = await BuildAsync(Docker, context, tag, buildKit);
        if (buildKit)
        {
            var steps = Regex.Matches(again, @"(?m)^#(\d+) \[[^\]]*\d+/\d+\] (?!FROM)").Select(m => m.Groups[1].Value).ToHashSet();
            var cached = Regex.Matches(again, @"(?m)^#(\d+) CACHED").Select(m => m.Groups[1].Value).ToHashSet();
            Assert.NotEmpty(steps);
            Assert.Subset(cached, steps);
        }
        else
        {
            int steps = Regex.Count(again, @"(?m)^Step \d+/\d+ : (?!FROM)");
            Assert.Equal(steps, Regex.Count(again, @"(?m)^ ---> Using cache"));
        }

        Assert.Equal(id, (await Docker.RunOkAsync("image", "inspect", "--format", "{{json .RootFS.Layers}}", tag)).Trim());
    }

    /// <summary>Starts container <c>live</c> on both dockerds, running the same changes (create, append, delete a
    /// file and a directory, a symlink, a hard link, chmod, chown, a 3 MB file) and a file docker cp put in; removed on
    /// disposal.</summary>
    private async Task<IAsyncDisposable> LiveAsync()
    {
        string hostFile = _work.GetFilePath("copied.txt");
        await File.WriteAllTextAsync(hostFile, "copied in from the host\n");
        const string Script =
            "set -e; echo new > /root/new.txt; echo more >> /etc/issue; rm /etc/motd; rm -r /usr/share/doc/make; " +
            "mkdir -p /var/tmp/made/deep; ln -s /root/new.txt /var/tmp/made/link; ln /root/new.txt /root/new-hard; " +
            "chmod 700 /var/tmp/made; chown 1000:1000 /root/new.txt; head -c 3000000 /dev/zero | tr '\\0' x > /root/blob; " +
            "touch /ready; exec sleep 600";
        var removal = new LiveContainers(Docker, Reference);
        try
        {
            foreach (Dockerd docker in new[] { Docker, Reference })
            {
                await docker.RunOkAsync("run", "-d", "--name", "live", DebianImageFixture.Image, "sh", "-c", Script);
                await WaitForFileAsync(docker, "live", "/ready");
                await docker.RunOkAsync("cp", hostFile, "live:/root/copied.txt");
            }

            return removal;
        }
        catch
        {
            await removal.DisposeAsync();
            throw;
        }
    }

    private sealed class LiveContainers(params Dockerd[] dockerds) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            foreach (Dockerd docker in dockerds)
            {
                await docker.RunAsync("rm", "-f", "live");
            }
        }
    }

    private static async Task<string> BuildAsync(Dockerd docker, string context, string tag, bool buildKit)
    {
        var environment = new Dictionary<string, string> { ["DOCKER_BUILDKIT"] = buildKit ? "1" : "0" };
        string[] args = buildKit ? ["build", "--progress=plain", "--network", "none", "-t", tag, context] : ["build", "-t", tag, context];
        CommandResult result = await docker.RunAsync(environment, BuildTimeout, args);
        Assert.True(result.ExitCode == 0, $"build of {tag} on {docker.StorageDriver} failed:\n{result}\n--- dockerd ---\n{string.Join('\n', docker.Log.Split('\n').TakeLast(40))}");
        return result.Stdout + result.Stderr;
    }

    private async Task<IReadOnlyList<IReadOnlyDictionary<string, string>>> SavedLayersAsync(Dockerd docker, string image, string name)
    {
        string tar = _work.GetFilePath(name + ".tar");
        await docker.RunOkAsync(null, TimeSpan.FromMinutes(4), "save", "-o", tar, image);
        IReadOnlyList<IReadOnlyDictionary<string, string>> layers = await TarContent.SavedLayersAsync(tar, _work.GetFilePath(name));
        File.Delete(tar);
        Directory.Delete(_work.GetFilePath(name), recursive: true);
        return layers;
    }

    private async Task<SortedDictionary<string, string>> ExportAsync(Dockerd docker, string container, string name)
    {
        string tar = _work.GetFilePath(name);
        await docker.RunOkAsync(null, TimeSpan.FromMinutes(4), "export", "-o", tar, container);
        await using FileStream stream = File.OpenRead(tar);
        return TarContent.Read(stream);
    }

    /// <summary>The seed's build context: a Makefile that builds a C program with gcc, and app.py that greets and runs it.</summary>
    private string SeedContext(string name)
    {
        string context = _work.GetFilePath(name);
        Directory.CreateDirectory(context);
        File.WriteAllText(Path.Combine(context, "Dockerfile"), "FROM deb:local\nCOPY . /app\nRUN make -C /app\nCMD python3 /app/app.py\n");
        File.WriteAllText(Path.Combine(context, "Makefile"), "all: hello\n\nhello: hello.c\n\tgcc -O2 -o hello hello.c\n");
        File.WriteAllText(Path.Combine(context, "hello.c"), "#include <stdio.h>\nint main(void) { puts(\"built with gcc\"); return 0; }\n");
        File.WriteAllText(Path.Combine(context, "app.py"),
            "import subprocess\nprint(\"hello from app.py\")\nprint(subprocess.run([\"/app/hello\"], capture_output=True, text=True).stdout, end=\"\")\n");
        return context;
    }

    /// <summary>A context whose Dockerfile uses FROM (two stages), COPY (--chown, --from), ADD of a local tar (which
    /// Docker extracts), RUN (create, modify, delete a file and a directory, chmod with setuid, chown, a hard link, a
    /// symlink, setcap), WORKDIR, USER and ENV.</summary>
    private string FullContext(string name)
    {
        string context = SeedContext(name);
        File.WriteAllText(Path.Combine(context, "Dockerfile"), """
            FROM deb:local AS builder
            COPY hello.c /src/
            RUN gcc -O2 -o /src/hello /src/hello.c

            FROM deb:local
            ENV GREETING="hello from env" APP_HOME=/srv/app
            WORKDIR /srv/app
            COPY --chown=1000:1000 files/ ./files/
            ADD bundle.tar /srv/app/bundle/
            COPY --from=builder /src/hello /usr/local/bin/hello
            RUN set -e; echo created > created.txt; echo modified >> /etc/issue; rm /etc/motd; rm -r /usr/share/doc/make; \
                chmod 4750 created.txt; chown 1000:100 created.txt; chmod 600 /etc/issue.net; chown 1000:1000 /etc/issue.net; \
                ln /usr/local/bin/hello /usr/local/bin/hello-hard; ln -s ../../srv/app/created.txt /usr/local/created-link; \
                mkdir -p /var/lib/app/empty; cp /usr/bin/env /usr/local/bin/rawenv; setcap cap_net_raw+ep /usr/local/bin/rawenv
            USER 1000:1000
            RUN echo "$GREETING as $(id -u)" > /tmp/user.txt
            USER root
            RUN rm /srv/app/files/b.txt
            USER 1000
            """);
        Directory.CreateDirectory(Path.Combine(context, "files", "sub"));
        File.WriteAllText(Path.Combine(context, "files", "a.txt"), "a\n");
        File.WriteAllText(Path.Combine(context, "files", "b.txt"), "b\n");
        File.WriteAllText(Path.Combine(context, "files", "sub", "c.txt"), "c\n");
        using (FileStream stream = File.Create(Path.Combine(context, "bundle.tar")))
        using (var writer = new TarWriter(stream, TarEntryFormat.Pax))
        {
            DateTimeOffset time = new(2024, 1, 2, 3, 4, 5, TimeSpan.Zero);
            writer.WriteEntry(new PaxTarEntry(TarEntryType.Directory, "bundle/") { Mode = (UnixFileMode)0b111_101_101, Uid = 123, Gid = 45, ModificationTime = time });
            writer.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "bundle/data.txt")
            {
                Mode = (UnixFileMode)0b110_100_000,
                Uid = 123,
                Gid = 45,
                ModificationTime = time,
                DataStream = new MemoryStream("bundled data\n"u8.ToArray()),
            });
            writer.WriteEntry(new PaxTarEntry(TarEntryType.SymbolicLink, "bundle/link") { LinkName = "data.txt", Uid = 123, Gid = 45, ModificationTime = time });
        }

        return context;
    }

    private static async Task WaitForFileAsync(Dockerd docker, string container, string path)
    {
        for (int attempt = 0; (await docker.RunAsync("exec", container, "test", "-e", path)).ExitCode != 0; attempt++)
        {
            Assert.True(attempt < 150, $"{container} did not write {path} in 30 s");
            await Task.Delay(200);
        }
    }

    /// <summary>Sizes as docker prints them: go-units HumanSizeWithPrecision(size, 3) in ps -s, HumanSize (4
    /// significant digits) in system df.</summary>
    private static string HumanSize(long bytes, int digits = 3)
    {
        string[] units = ["B", "kB", "MB", "GB", "TB"];
        double value = bytes;
        int unit = 0;
        while (value >= 1000 && unit < units.Length - 1)
        {
            value /= 1000;
            unit++;
        }

        return value.ToString("G" + digits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) + units[unit];
    }

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
