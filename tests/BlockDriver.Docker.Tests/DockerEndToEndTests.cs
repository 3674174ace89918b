using System.Globalization;
using System.Text.Json;
using BlockDriver.Docker.Tests.EndToEnd;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>
/// The real dockerd (Debian's docker.io 20.10, --experimental) on the real <c>blockdriver daemon --docker</c> as its
/// graphdriver plugin, driven with the real docker client: images imported and loaded from tars built here, containers
/// that read, write and delete, docker diff / commit / save (loaded into a second dockerd on overlay2), sizes against
/// the store's own figures, twenty containers at once, restarts of both daemons. Every test ends by checking that
/// nothing (mount, loop device, FUSE mount, process, socket) was left behind (<see cref="DockerEnvironment"/>).
/// </summary>
[Collection(DockerEndToEndCollection.Name)]
public sealed class DockerEndToEndTests(ITestOutputHelper output)
{
    private const string Busybox = "e2e/busybox:1";
    private const string Layered = "e2e/layered:1";

    // Lists the files of the layered image's interesting directories with their checksums: the same output means the
    // same content (/etc/hosts, hostname and resolv.conf are dockerd's bind mounts and left out).
    private const string ContentListing =
        "cd / && find app bin/busybox data etc/motd etc/passwd made opq 2>/dev/null | sort && " +
        "find app bin/busybox data etc/motd etc/passwd made opq -type f 2>/dev/null | sort | xargs md5sum";

    [DockerFact]
    public async Task Imported_and_loaded_images_run_with_their_files_and_whiteouts_applied()
    {
        await using DockerEnvironment env = await DockerEnvironment.StartAsync(output);
        Dockerd docker = env.Docker;

        await env.ImportBusyboxAsync(docker, Busybox);
        Assert.Equal("hello from the image\n", await docker.RunOkAsync("run", "--rm", Busybox, "cat", "/data/hello.txt"));
        Assert.Equal("500500\n", await docker.RunOkAsync("run", "--rm", Busybox, "awk", "{ s += $1 } END { print s }", "/data/numbers.txt"));

        await LoadLayeredAsync(env, docker);
        Assert.Equal("3", (await docker.RunOkAsync("image", "inspect", "--format", "{{len .RootFS.Layers}}", Layered)).Trim());
        string seen = await docker.RunOkAsync("run", "--rm", Layered, "sh", "-c",
            "ls -A /opq; echo --; ls -A /data; echo --; cat /etc/motd /data/keep.txt /app/version; " +
            "for p in /data/gone.txt /opq/lower.txt /opq/sub /opq/mid.txt; do test -e $p && echo present: $p; done; true");
        Assert.Equal($"{ImageTars.OpaqueListing}\n--\nkeep.txt\n--\n{ImageTars.LayeredMotd}\nkept from layer one\n3\n", seen);

        // Every image layer dockerd made is a sealed layer of the store, under dockerd's cache id.
        IReadOnlyList<JsonElement> layers = await env.LayersAsync();
        List<string> cacheIds = CacheIds(docker);
        Assert.Equal(4, cacheIds.Count);
        foreach (string cacheId in cacheIds)
        {
            JsonElement layer = Assert.Single(layers, l => l.GetProperty("id").GetString() == cacheId);
            Assert.Equal("sealed", layer.GetProperty("state").GetString());
        }

        // --rm removed the containers: no writable layer is left in the store.
        Assert.DoesNotContain(layers, l => l.GetProperty("state").GetString() != "sealed");
    }

    [DockerFact]
    public async Task Container_changes_show_in_docker_diff_and_a_commit_saved_from_blockdriver_runs_the_same_on_overlay2()
    {
        await using DockerEnvironment env = await DockerEnvironment.StartAsync(output);
        Dockerd docker = env.Docker;
        await LoadLayeredAsync(env, docker);

        await docker.RunOkAsync("run", "--name", "writer", Layered, "sh", "-c",
            "echo new > /data/new.txt && echo appended >> /etc/motd && rm /data/keep.txt /app/version && " +
            "mkdir -p /made/deep && echo deep > /made/deep/x.txt && cat /etc/motd");

        // Exactly the container's own changes — what it added, modified and deleted — and, as Docker's own drivers list
        // them, every directory above a change (C /etc for the edited /etc/motd). The same list overlay2 prints.
        string[] diff = Lines(await docker.RunOkAsync("diff", "writer"));
        Assert.Equal(
            ["A /data/new.txt", "A /made", "A /made/deep", "A /made/deep/x.txt", "C /app", "C /data", "C /etc", "C /etc/motd", "D /app/version", "D /data/keep.txt"],
            diff.Order(StringComparer.Ordinal));

        // The committed image shows the changes to a new container.
        await docker.RunOkAsync("commit", "writer", "e2e/committed:1");
        Assert.Equal("4", (await docker.RunOkAsync("image", "inspect", "--format", "{{len .RootFS.Layers}}", "e2e/committed:1")).Trim());
        string committed = await docker.RunOkAsync("run", "--rm", "e2e/committed:1", "sh", "-c",
            "cat /data/new.txt /made/deep/x.txt /etc/motd; ls -A /data /app /opq");
        Assert.Equal($"new\ndeep\n{ImageTars.LayeredMotd}\nappended\n/app:\n\n/data:\nnew.txt\n\n/opq:\n{ImageTars.OpaqueListing}\n", committed);
        string listing = await docker.RunOkAsync("run", "--rm", "e2e/committed:1", "sh", "-c", ContentListing);

        // docker save rebuilds the layer tars from the plugin's layers (dockerd's tar-split metadata plus file bodies
        // read through Get); a dockerd on overlay2 loads them, checking every diff id, and sees the same files.
        string saved = env.PathOf("committed-save.tar");
        await docker.RunOkAsync("save", "-o", saved, "e2e/committed:1");
        Dockerd overlay = await env.OverlayAsync();
        Assert.Contains("Loaded image: e2e/committed:1", await overlay.RunOkAsync("load", "-i", saved), StringComparison.Ordinal);
        Assert.Equal(
            (await docker.RunOkAsync("image", "inspect", "--format", "{{json .RootFS.Layers}}", "e2e/committed:1")).Trim(),
            (await overlay.RunOkAsync("image", "inspect", "--format", "{{json .RootFS.Layers}}", "e2e/committed:1")).Trim());
        Assert.Equal(listing, await overlay.RunOkAsync("run", "--rm", "e2e/committed:1", "sh", "-c", ContentListing));
        Assert.Equal(committed, await overlay.RunOkAsync("run", "--rm", "e2e/committed:1", "sh", "-c",
            "cat /data/new.txt /made/deep/x.txt /etc/motd; ls -A /data /app /opq"));
    }

    [DockerFact]
    public async Task Docker_sizes_follow_the_store_and_rm_and_rmi_give_the_space_back()
    {
        const long Written = 8L << 20;
        await using DockerEnvironment env = await DockerEnvironment.StartAsync(output);
        Dockerd docker = env.Docker;

        // The busybox image stays: with it the store already holds its base file system layer.
        await env.ImportBusyboxAsync(docker, Busybox);
        JsonElement before = await env.DfAsync();
        long catalogBefore = await CatalogBytesAsync(env);
        string[] layersBefore = [.. (await env.LayersAsync()).Select(l => l.GetProperty("id").GetString()!)];

        await LoadLayeredAsync(env, docker);
        string id = (await docker.RunOkAsync("run", "-d", "--name", "sized", Layered, "sh", "-c",
            $"dd if=/dev/urandom of=/data/blob bs=1M count={Written >> 20} 2>/dev/null && sync && touch /ready && exec sleep 600")).Trim();
        await WaitForFileAsync(docker, "sized", "/ready");

        // dockerd's figures: SIZE is the plugin's DiffSize (bytes of regular files the container added or changed: the
        // blob and the empty /ready), virtual size adds the image's size (the ApplyDiff sizes of its layers).
        string[] sizes = (await docker.RunOkAsync("container", "inspect", "--size", "--format", "{{.SizeRw}} {{.SizeRootFs}}", id)).Trim().Split(' ');
        long sizeRw = long.Parse(sizes[0], CultureInfo.InvariantCulture);
        long sizeRootFs = long.Parse(sizes[1], CultureInfo.InvariantCulture);
        long imageSize = long.Parse((await docker.RunOkAsync("image", "inspect", "--format", "{{.Size}}", Layered)).Trim(), CultureInfo.InvariantCulture);
        Assert.Equal(Written, sizeRw);
        Assert.Equal(imageSize + sizeRw, sizeRootFs);
        string ps = await docker.RunOkAsync("ps", "-s", "--filter", "name=sized", "--format", "{{.Size}}");
        Assert.Equal($"{HumanSize(sizeRw)} (virtual {HumanSize(sizeRootFs)})", ps.Trim());
        output.WriteLine(await docker.RunOkAsync("ps", "-s"));
        output.WriteLine(await docker.RunOkAsync("system", "df"));
        output.WriteLine(await env.Daemon.CliOkAsync("df"));

        // The store's figures: the container layer (named by dockerd's mount id) holds what the container wrote,
        // allocated in the layer's VHDX: at least the blob, and at most the blob plus the ext4 metadata and journal
        // blocks the writes dirtied and the VHDX's own structures (headers, region table, metadata, BAT, sector
        // bitmaps, log): 0.36-0.39 MiB measured for the 8 MiB blob, bounded at 2 MiB.
        IReadOnlyList<JsonElement> layers = await env.LayersAsync();
        string mountId = MountId(docker, id);
        JsonElement container = Assert.Single(layers, l => l.GetProperty("id").GetString() == mountId);
        Assert.Equal(("container", "writable", mountId + "-init"),
            (container.GetProperty("kind").GetString(), container.GetProperty("state").GetString(), container.GetProperty("parent").GetString()));
        long storeSize = Bytes(container, "size");
        output.WriteLine($"container layer: dockerd SIZE {sizeRw} B ({Mib(sizeRw)}), store size {storeSize} B ({Mib(storeSize)}), overhead {Mib(storeSize - sizeRw)}");
        Assert.InRange(storeSize - sizeRw, 0, 2L << 20);

        // The store's virtual size is the layer plus its chain (the -init layer, the image layers, the base file
        // system), and dockerd shows both store figures under GraphDriver.Data.
        JsonElement parent = Assert.Single(layers, l => l.GetProperty("id").GetString() == mountId + "-init");
        Assert.Equal(storeSize + Bytes(parent, "virtualSize"), Bytes(container, "virtualSize"));
        string data = await docker.RunOkAsync("container", "inspect", "--format", "{{.GraphDriver.Data.Size}} {{.GraphDriver.Data.VirtualSize}}", id);
        Assert.Equal($"{storeSize} {Bytes(container, "virtualSize")}", data.Trim());

        // The image layers' store sizes against what dockerd counted at ApplyDiff (bytes of file content in the tars):
        // they hold at least that content, plus per layer the ext4 metadata the tar touched (inodes, directories,
        // bitmaps, journal) and the VHDX structures: 1.8 MiB measured for the three layers, bounded at 1 MiB each.
        long imageStore = CacheIds(docker).Where(c => layers.Any(l => l.GetProperty("id").GetString() == c) && !layersBefore.Contains(c))
            .Sum(c => Bytes(layers.Single(l => l.GetProperty("id").GetString() == c), "size"));
        output.WriteLine($"layered image: dockerd size {imageSize} B, its three store layers {imageStore} B");
        Assert.InRange(imageStore - imageSize, 0, 3L << 20);

        // rm and rmi: the container's two layers and the image's three go, and the store's layer files are back to
        // exactly what they were. Only the catalog may have grown: SQLite keeps the pages the removed rows freed, and
        // its WAL grows until a checkpoint (up to about 1000 pages of 4 KiB). So the store's allocated bytes come back
        // to where they were plus the catalog files' growth (0.39 MiB measured, all WAL), within 64 KiB for run/
        // (mounts.json, empty lock files, directory blocks).
        await docker.RunOkAsync("rm", "-f", "sized");
        await docker.RunOkAsync("rmi", Layered);
        JsonElement after = await env.DfAsync();
        long catalogGrowth = await CatalogBytesAsync(env) - catalogBefore;
        Assert.Equal(layersBefore.Order(StringComparer.Ordinal), (await env.LayersAsync()).Select(l => l.GetProperty("id").GetString()!).Order(StringComparer.Ordinal));
        Assert.Equal(Bytes(before, "layerBytes"), Bytes(after, "layerBytes"));
        long growth = Bytes(after, "allocated") - Bytes(before, "allocated");
        output.WriteLine($"store allocated: before {Bytes(before, "allocated")} B, after rm/rmi {Bytes(after, "allocated")} B: {growth} B more, catalog files {catalogGrowth} B more");
        Assert.InRange(catalogGrowth, 0, 5L << 20);
        Assert.InRange(growth, -(64L << 10), catalogGrowth + (64L << 10));
    }

    [DockerFact]
    public async Task Twenty_containers_on_one_image_run_at_once_and_each_sees_only_its_own_data()
    {
        const int Count = 20;
        await using DockerEnvironment env = await DockerEnvironment.StartAsync(output);
        Dockerd docker = env.Docker;
        await env.ImportBusyboxAsync(docker, Busybox);

        // Each writes a file named after itself, its name into a shared path, 256 KiB of random data and its checksum.
        string[] names = [.. Enumerable.Range(1, Count).Select(i => $"c{i:D2}")];
        var started = System.Diagnostics.Stopwatch.StartNew();
        await ForEachAsync(names, 4, name => docker.RunOkAsync("run", "-d", "--name", name, Busybox, "sh", "-c",
            $"echo {name} > /data/{name}.txt && echo {name} > /data/hello.txt && " +
            "dd if=/dev/urandom of=/data/random.bin bs=64k count=4 2>/dev/null && md5sum /data/random.bin > /data/random.md5 && " +
            "touch /ready && exec sleep 600"));
        output.WriteLine($"{Count} containers started in {started.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(Count, Lines(await docker.RunOkAsync("ps", "-q")).Length);
        await ForEachAsync(names, 4, name => WaitForFileAsync(docker, name, "/ready"));

        var checksums = new HashSet<string>(StringComparer.Ordinal);
        await ForEachAsync(names, 4, async name =>
        {
            string seen = await docker.RunOkAsync("exec", name, "sh", "-c", "ls /data; cat /data/hello.txt; md5sum -c /data/random.md5 && cat /data/random.md5");
            string[] lines = Lines(seen);
            Assert.Equal([$"{name}.txt", "hello.txt", "numbers.txt", "random.bin", "random.md5", name, "/data/random.bin: OK"], lines[..^1]);
            lock (checksums)
            {
                Assert.True(checksums.Add(lines[^1].Split(' ')[0]), $"{name} sees another container's random.bin");
            }
        });

        // docker cp reads through the plugin's Get of a running container's layer.
        string copied = env.PathOf("c07.txt");
        await docker.RunOkAsync("cp", "c07:/data/c07.txt", copied);
        Assert.Equal("c07\n", await File.ReadAllTextAsync(copied));

        // The image itself is unchanged for a new container.
        Assert.Equal("hello from the image\n", await docker.RunOkAsync("run", "--rm", Busybox, "cat", "/data/hello.txt"));
        Assert.Equal(Count, (await env.LayersAsync()).Count(l => l.GetProperty("kind").GetString() == "container" && !l.GetProperty("id").GetString()!.EndsWith("-init", StringComparison.Ordinal)));
        await docker.RunOkAsync(["rm", "-f", .. names]);
        output.WriteLine($"{Count} containers started, checked and removed in {started.Elapsed.TotalSeconds:F1} s");
    }

    [DockerFact]
    public async Task Stopped_containers_start_again_with_their_data_after_dockerd_and_plugin_daemon_restarts()
    {
        await using DockerEnvironment env = await DockerEnvironment.StartAsync(output);
        Dockerd docker = env.Docker;
        await env.ImportBusyboxAsync(docker, Busybox);

        // Each start appends a line to a file of the container's layer and prints the file.
        const string Script = "echo run >> /data/runs.txt && wc -l < /data/runs.txt";
        Assert.Equal("1", (await docker.RunOkAsync("run", "--name", "keeper", Busybox, "sh", "-c", Script)).Trim());
        Assert.Equal("2", (await docker.RunOkAsync("start", "-a", "keeper")).Trim());

        Assert.Equal(0, await docker.StopAsync());
        await docker.StartAsync();
        Assert.Equal("3", (await docker.RunOkAsync("start", "-a", "keeper")).Trim());

        // The plugin daemon stops cleanly (SIGTERM) under a running dockerd, and comes back.
        Assert.Equal(0, await env.Daemon.StopAsync());
        Assert.Empty(HostLeaks.Find(Path.Combine(env.Directory, "store")));
        await env.Daemon.StartAsync();
        Assert.Equal("4", (await docker.RunOkAsync("start", "-a", "keeper")).Trim());

        // SIGKILL while dockerd holds a mount (a running container) and keeper's mount lingers: the next daemon cleans
        // up both (the runner's old loop device stays held by its container, and is said so), remounts, and keeper's
        // data (flushed when it stopped) is all there.
        await docker.RunOkAsync("run", "-d", "--name", "runner", Busybox, "sleep", "600");

        // run -d returns once the process started, maybe before it paged in its binary: under load a kill then made
        // that page-in fail, the container exit, and its device go free. An exec that reads the file system waits
        // until the container really runs on it.
        await docker.RunOkAsync("exec", "runner", "cat", "/data/hello.txt");
        await env.Daemon.KillAsync();
        await env.Daemon.StartAsync();
        Assert.Contains("of the previous daemon is still held", env.Daemon.Log, StringComparison.Ordinal);
        Assert.DoesNotContain("failed: ", env.Daemon.Log.Split("----- blockdriver daemon restarted -----")[^1], StringComparison.Ordinal);
        Assert.Equal("5", (await docker.RunOkAsync("start", "-a", "keeper")).Trim());
        await docker.RunOkAsync("rm", "-f", "runner");
        Assert.Equal("hello from the image\n", await docker.RunOkAsync("run", "--rm", Busybox, "cat", "/data/hello.txt"));

        // And dockerd restarted once more over the restarted plugin.
        Assert.Equal(0, await docker.StopAsync());
        await docker.StartAsync();
        Assert.Equal("6", (await docker.RunOkAsync("start", "-a", "keeper")).Trim());
    }

    private static async Task LoadLayeredAsync(DockerEnvironment env, Dockerd docker)
    {
        string tar = env.PathOf("layered.tar");
        ImageTars.WriteLayeredImage(tar, "e2e/layered", "1");
        Assert.Contains($"Loaded image: {Layered}", await docker.RunOkAsync("load", "-i", tar), StringComparison.Ordinal);
    }

    /// <summary>dockerd's cache ids of its image layers: the graphdriver ids it gave the plugin's Create.</summary>
    private static List<string> CacheIds(Dockerd docker)
    {
        string layerDb = Path.Combine(docker.DataRoot, "image", docker.StorageDriver, "layerdb", "sha256");
        return [.. Directory.EnumerateDirectories(layerDb).Select(d => File.ReadAllText(Path.Combine(d, "cache-id")).Trim())];
    }

    private static async Task WaitForFileAsync(Dockerd docker, string container, string path)
    {
        for (int attempt = 0; (await docker.RunAsync("exec", container, "test", "-e", path)).ExitCode != 0; attempt++)
        {
            Assert.True(attempt < 150, $"{container} did not write {path} in 30 s");
            await Task.Delay(200);
        }
    }

    /// <summary>Sizes as <c>docker ps -s</c> prints them (go-units HumanSizeWithPrecision(size, 3): decimal units,
    /// three significant digits).</summary>
    private static string HumanSize(long bytes)
    {
        string[] units = ["B", "kB", "MB", "GB", "TB"];
        double value = bytes;
        int unit = 0;
        while (value >= 1000 && unit < units.Length - 1)
        {
            value /= 1000;
            unit++;
        }

        return value.ToString("G3", CultureInfo.InvariantCulture) + units[unit];
    }

    /// <summary>Bytes the store's catalog files (catalog.db, its WAL and shared-memory index) take on disk.</summary>
    private static async Task<long> CatalogBytesAsync(DockerEnvironment env)
    {
        string[] files = Directory.GetFiles(env.Daemon.Store, "catalog.db*");
        CommandResult du = await Command.RunAsync("du", ["--block-size=1", "-c", .. files], TimeSpan.FromMinutes(1));
        Assert.True(du.ExitCode == 0, du.ToString());
        return long.Parse(du.Stdout.Trim().Split('\n')[^1].Split('\t')[0], CultureInfo.InvariantCulture);
    }

    /// <summary>dockerd's mount id of a container's read-write layer: the graphdriver id of its layer (the parent
    /// is MOUNTID-init).</summary>
    private static string MountId(Dockerd docker, string containerId) =>
        File.ReadAllText(Path.Combine(docker.DataRoot, "image", docker.StorageDriver, "layerdb", "mounts", containerId, "mount-id")).Trim();

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static async Task ForEachAsync(IEnumerable<string> items, int parallelism, Func<string, Task> action) =>
        await Parallel.ForEachAsync(items, new ParallelOptions { MaxDegreeOfParallelism = parallelism }, async (item, _) => await action(item));

    private static long Bytes(JsonElement element, string property) => element.GetProperty(property).GetInt64();

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("F2", CultureInfo.InvariantCulture) + " MiB";
}
