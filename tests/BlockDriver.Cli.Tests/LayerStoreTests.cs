using System.Diagnostics;
using System.Text.Json;
using BlockDriver.Cli.Tests.Support;
using Xunit.Abstractions;

namespace BlockDriver.Cli.Tests;

/// <summary>Base of the tests of the store commands (<c>layer ...</c>, <c>df</c>, <c>store check</c>): a store at
/// <see cref="Root"/> inside the test's directory, helpers that run <c>blockdriver --root Root ...</c>, fill layers
/// through <c>layer import</c> of generated raw files and read them back through <c>layer export</c>. Every
/// capacity is 64 MiB so a test writes little.</summary>
public abstract class LayerStoreTests(ITestOutputHelper output) : CliTestBase(output)
{
    protected const long MiB = TestImages.MiB;

    /// <summary>The capacity of every layer the tests make.</summary>
    protected const long Capacity = 64 * MiB;

    /// <summary>The store directory (absent until a command creates it).</summary>
    protected string Root => PathOf("store");

    /// <summary>The file of layer <paramref name="id"/>.</summary>
    protected string LayerFile(string id) => Path.Combine(Root, "layers", id + ".vhdx");

    /// <summary>Runs <c>blockdriver --root Root</c> with the arguments.</summary>
    protected Task<ProcessResult> StoreAsync(params string[] args) => RunAsync(["--root", Root, .. args]);

    /// <summary>Runs <c>blockdriver --root Root</c> and fails the test unless it exits 0.</summary>
    protected Task<ProcessResult> StoreOkAsync(params string[] args) => RunOkAsync(["--root", Root, .. args]);

    /// <summary>Runs <c>blockdriver</c> with environment changes (a null value removes the variable).</summary>
    protected async Task<ProcessResult> RunWithEnvironmentAsync(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? ChildProcess.Locate("dotnet") ?? "dotnet";
        string cli = Path.Combine(AppContext.BaseDirectory, "blockdriver.dll");
        ProcessResult result = await ChildProcess.RunAsync(dotnet, [cli, .. args], Temp.FullName, environment);
        Output.WriteLine($"$ {string.Join(' ', environment.Select(e => $"{e.Key}={e.Value}"))} blockdriver {string.Join(' ', args)}\n{result}");
        return result;
    }

    /// <summary>Writes a <see cref="Capacity"/>-byte raw file named <paramref name="name"/> with seeded data in the
    /// given ranges and returns its path.</summary>
    protected string WriteRaw(string name, params (long Offset, int Length, int Seed)[] data)
    {
        string path = PathOf(name);
        TestImages.WriteRaw(path, Capacity, data);
        return path;
    }

    /// <summary>Copies raw file <paramref name="source"/> to <paramref name="name"/> with seeded data written over
    /// the given ranges and returns the copy's path.</summary>
    protected string ModifyRaw(string source, string name, params (long Offset, int Length, int Seed)[] data)
    {
        string path = PathOf(name);
        TestImages.CopyAndModify(source, path, data);
        return path;
    }

    /// <summary><c>layer import RAW --id ID [--parent PARENT]</c>, then <c>layer seal ID</c> when asked.</summary>
    protected async Task ImportAsync(string raw, string id, string? parent = null, bool seal = false)
    {
        string[] args = parent is null ? ["layer", "import", raw, "--id", id] : ["layer", "import", raw, "--id", id, "--parent", parent];
        Assert.Equal(id, (await StoreOkAsync(args)).Stdout.Trim());
        if (seal)
        {
            await StoreOkAsync("layer", "seal", id);
        }
    }

    /// <summary>A sealed base layer <paramref name="id"/> holding the raw file <paramref name="raw"/>.</summary>
    protected Task SealedBaseAsync(string id, string raw) => ImportAsync(raw, id, seal: true);

    /// <summary>Exports layer <paramref name="id"/> as raw and asserts that its bytes are those of
    /// <paramref name="expectedRaw"/>.</summary>
    protected async Task AssertContentAsync(string id, string expectedRaw)
    {
        string exported = PathOf($"{id}.export.raw");
        await StoreOkAsync("layer", "export", id, exported, "-O", "raw");
        AssertSameBytes(expectedRaw, exported);
        File.Delete(exported);
    }

    /// <summary><c>layer inspect ID --json</c>, parsed.</summary>
    protected async Task<JsonElement> InspectAsync(string id) => ParseJson((await StoreOkAsync("layer", "inspect", id, "--json")).Stdout);

    /// <summary><c>layer ls --json</c>, parsed.</summary>
    protected async Task<JsonElement> LsAsync() => ParseJson((await StoreOkAsync("layer", "ls", "--json")).Stdout);

    /// <summary>The ids <c>layer ls --json</c> lists, in its order.</summary>
    protected async Task<string[]> IdsAsync() => [.. (await LsAsync()).EnumerateArray().Select(l => l.GetProperty("id").GetString()!)];

    /// <summary>Asserts that layer <paramref name="id"/> does not exist: inspect fails with NotFound's message.</summary>
    protected async Task AssertNoLayerAsync(string id)
    {
        AssertError(await StoreAsync("layer", "inspect", id), 1, $"no layer {id} in {Root}.");
        Assert.False(File.Exists(LayerFile(id)), $"{LayerFile(id)} still exists");
    }

    protected static JsonElement ParseJson(string json)
    {
        using JsonDocument document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    /// <summary>Asserts that two files have the same length and bytes, naming the first differing offset.</summary>
    protected static void AssertSameBytes(string expected, string actual)
    {
        using FileStream a = File.OpenRead(expected);
        using FileStream b = File.OpenRead(actual);
        Assert.True(a.Length == b.Length, $"{actual} is {b.Length} bytes, {expected} {a.Length}");
        byte[] x = new byte[MiB];
        byte[] y = new byte[MiB];
        for (long offset = 0; offset < a.Length; offset += x.Length)
        {
            a.ReadExactly(x);
            b.ReadExactly(y);
            if (!x.AsSpan().SequenceEqual(y))
            {
                int at = x.AsSpan().CommonPrefixLength(y);
                Assert.Fail($"{actual} differs from {expected} at byte {offset + at}");
            }
        }
    }

    /// <summary>A python3 child process holding an exclusive fcntl lock on layer <paramref name="id"/>'s lock file
    /// (run/locks/ID.lock), as a process that has the layer open does. Dispose kills it.</summary>
    protected async Task<LayerLockHolder> HoldLayerLockAsync(string id)
    {
        string? python = ChildProcess.Locate("python3");
        Assert.True(python is not null, "python3 was not found on PATH or in /usr/bin; install python3-minimal (CI does).");
        const string Script = """
            import fcntl, os, sys, time
            f = open(sys.argv[1], 'a+')
            fcntl.lockf(f, fcntl.LOCK_EX)
            print(os.getpid(), flush=True)
            time.sleep(300)
            """;
        var start = new ProcessStartInfo(python!) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string arg in new[] { "-c", Script, Path.Combine(Root, "run", "locks", id + ".lock") })
        {
            start.ArgumentList.Add(arg);
        }

        var holder = new LayerLockHolder(Process.Start(start)!);
        try
        {
            string? line = await holder.Process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(int.TryParse(line, out int pid), $"python3 did not take the lock; it printed \"{line}\"");
            holder.Pid = pid;
            Output.WriteLine($"pid {pid} holds the lock of {id}");
            return holder;
        }
        catch
        {
            holder.Dispose();
            throw;
        }
    }

    /// <summary>The process <see cref="HoldLayerLockAsync"/> started; disposing kills it and waits for it.</summary>
    protected sealed class LayerLockHolder(Process process) : IDisposable
    {
        public Process Process { get; } = process;

        /// <summary>The pid of the process holding the lock (python's own, after any exec).</summary>
        public int Pid { get; set; }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
            }

            Process.WaitForExit();
            Process.Dispose();
        }
    }
}
