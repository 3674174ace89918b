using System.Diagnostics;
using BlockDriver.CrashHarness;
using Xunit.Abstractions;

namespace BlockDriver.Vhdx.Tests;

/// <summary>Kills a writer process with SIGKILL at random points and checks that everything it acknowledged after
/// a flush reads back exactly, that nothing else appears but data it was writing, and that the file opens clean.</summary>
public sealed class CrashTests : IDisposable
{
    private const long DiskLength = 32L << 20;
    private const int Steps = 200_000;
    private const int Sector = CrashWorkload.SectorSize;

    private readonly ITestOutputHelper _output;
    private readonly string _dir = Directory.CreateTempSubdirectory("bd-crash").FullName;

    public CrashTests(ITestOutputHelper output)
    {
        _output = output;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public Task Dynamic_file_survives_kill_9_with_every_acknowledged_write() => RunAsync(differencing: false);

    [Fact]
    public Task Differencing_file_survives_kill_9_with_every_acknowledged_write() => RunAsync(differencing: true);

    private async Task RunAsync(bool differencing)
    {
        int baseSeed = Environment.GetEnvironmentVariable("BLOCKDRIVER_SEED") is { } s ? int.Parse(s, System.Globalization.CultureInfo.InvariantCulture) : Random.Shared.Next(1, 1_000_000);
        int iterations = Environment.GetEnvironmentVariable("BLOCKDRIVER_CRASH_ITERATIONS") is { } n ? int.Parse(n, System.Globalization.CultureInfo.InvariantCulture) : 12;
        _output.WriteLine($"seed {baseSeed} (set BLOCKDRIVER_SEED to reproduce), {iterations} kills");

        string basePath = Path.Combine(_dir, "base.vhdx");
        VhdxFile.CreateDynamic(basePath, DiskLength, new VhdxCreateOptions { BlockSize = 1 << 20 });
        byte[] model = new byte[DiskLength];
        await using (VhdxDisk disk = VhdxDisk.Open(basePath))
        {
            // Every other MiB holds base data, so a differencing child has parent data to hide or show.
            for (long offset = 0; offset < DiskLength; offset += 2 << 20)
            {
                for (long sector = offset / Sector; sector < (offset + (1 << 20)) / Sector; sector++)
                {
                    CrashWorkload.SectorPattern(0, -1, sector, model.AsSpan((int)(sector * Sector), Sector));
                }

                await disk.WriteAsync(offset, model.AsMemory((int)offset, 1 << 20));
            }
        }

        string target = basePath;
        if (differencing)
        {
            target = Path.Combine(_dir, "child.vhdx");
            await VhdxFile.CreateDifferencingAsync(target, basePath);
        }

        int acks = 0;
        int replays = 0;
        var random = new Random(baseSeed);
        for (int iteration = 0; iteration < iterations; iteration++)
        {
            int seed = baseSeed + iteration;
            int lastAck = await RunUntilKilledAsync(target, seed, random.Next(20, 700));
            acks += lastAck > 0 ? 1 : 0;

            CrashOp[] ops = [.. CrashWorkload.Generate(seed, DiskLength, Steps)];
            byte[] acknowledged = (byte[])model.Clone();
            Apply(acknowledged, ops.AsSpan(0, lastAck), seed);

            byte[] actual;
            await using (VhdxDisk disk = VhdxDisk.Open(target, new VhdxOpenOptions { ReadOnly = true }))
            {
                replays += disk.Top.ReplayedLog ? 1 : 0;
                actual = new byte[DiskLength];
                await disk.ReadAsync(0, actual);
            }

            Verify(actual, acknowledged, ops, lastAck, seed, $"seed {baseSeed}, iteration {iteration} (harness seed {seed}), last ack {lastAck}");

            // A writable open replays the log in place; the result must be what the read-only replay showed.
            await using (VhdxDisk disk = VhdxDisk.Open(target))
            {
                byte[] again = new byte[DiskLength];
                await disk.ReadAsync(0, again);
                Assert.True(again.AsSpan().SequenceEqual(actual), $"seed {baseSeed}, iteration {iteration}: in-place replay differs from in-memory replay");
            }

            model = actual;
        }

        _output.WriteLine($"{acks}/{iterations} runs acknowledged at least one flush; {replays} opens replayed a log");
        Assert.True(acks >= iterations / 2, $"seed {baseSeed}: only {acks} of {iterations} runs got past a flush; the test proves little");
        Assert.True(replays > 0, $"seed {baseSeed}: no kill left a log to replay");
    }

    private static async Task<int> RunUntilKilledAsync(string target, int seed, int delayMs)
    {
        string harness = Path.Combine(AppContext.BaseDirectory, "BlockDriver.CrashHarness.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string arg in new[] { harness, target, seed.ToString(System.Globalization.CultureInfo.InvariantCulture), Steps.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        int lastAck = 0;
        var ready = new TaskCompletionSource();
        Task reader = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                if (line == "ready")
                {
                    ready.TrySetResult();
                }
                else if (line.StartsWith("ack ", StringComparison.Ordinal))
                {
                    Volatile.Write(ref lastAck, int.Parse(line.AsSpan(4), System.Globalization.CultureInfo.InvariantCulture));
                }
            }
        });
        Task<string> errors = process.StandardError.ReadToEndAsync();
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await Task.Delay(delayMs);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }

        await reader;
        string stderr = await errors;
        Assert.True(string.IsNullOrEmpty(stderr), $"harness seed {seed} failed before the kill: {stderr}");
        return Volatile.Read(ref lastAck);
    }

    private static void Apply(byte[] disk, ReadOnlySpan<CrashOp> ops, int seed)
    {
        foreach (CrashOp op in ops)
        {
            Span<byte> range = disk.AsSpan((int)op.Offset, op.Length);
            if (op.Kind == CrashOpKind.WriteZeroes)
            {
                range.Clear();
            }
            else if (op.Kind == CrashOpKind.Write)
            {
                long first = op.Offset / Sector;
                for (int s = 0; s < op.Length / Sector; s++)
                {
                    CrashWorkload.SectorPattern(seed, op.Index, first + s, range.Slice(s * Sector, Sector));
                }
            }
        }
    }

    // Each sector must hold its acknowledged content, or what a step after the last acknowledgement wrote there.
    private static void Verify(byte[] actual, byte[] acknowledged, CrashOp[] ops, int lastAck, int seed, string context)
    {
        var laterZeroes = ops.Skip(lastAck).Where(o => o.Kind == CrashOpKind.WriteZeroes).ToList();
        Span<byte> expected = stackalloc byte[Sector];
        for (long sector = 0; sector < DiskLength / Sector; sector++)
        {
            ReadOnlySpan<byte> got = actual.AsSpan((int)(sector * Sector), Sector);
            if (got.SequenceEqual(acknowledged.AsSpan((int)(sector * Sector), Sector)))
            {
                continue;
            }

            long offset = sector * Sector;
            if (!got.ContainsAnyExcept((byte)0) && laterZeroes.Exists(o => o.Offset <= offset && offset < o.Offset + o.Length))
            {
                continue;
            }

            int step = BitConverter.ToInt32(got[8..]);
            bool fromLaterWrite = BitConverter.ToUInt32(got) == CrashWorkload.Magic && BitConverter.ToInt32(got[4..]) == seed
                                  && step >= lastAck && step < ops.Length && ops[step].Kind == CrashOpKind.Write
                                  && ops[step].Offset <= offset && offset < ops[step].Offset + ops[step].Length;
            if (fromLaterWrite)
            {
                CrashWorkload.SectorPattern(seed, step, sector, expected);
                if (got.SequenceEqual(expected))
                {
                    continue;
                }
            }

            Assert.Fail($"{context}: sector {sector} (offset {offset}) holds neither its acknowledged content nor data written after the acknowledgement.");
        }
    }
}
