using System.Diagnostics;
using System.Globalization;
using BlockDriver.Abstractions;
using BlockDriver.Mount.Tar;
using Xunit.Abstractions;
using static BlockDriver.Mount.Tests.Tar.RawTar;

namespace BlockDriver.Mount.Tests.Tar;

/// <summary>Mutation fuzzing of layer tars (beside the VHDX one, MalformedFileFuzzTests): valid tars of every
/// round-trip case, of GNU long names and of GNU sparse headers get random byte changes in their headers (numeric
/// fields, type flags, names, pax records) and data, truncations and repeated blocks, with the header checksums
/// mostly fixed so the mutations get past them; each must apply or fail with InvalidArgument: never another
/// exception type, never a hang, never more than a bounded allocation.</summary>
/// <remarks>Reproduce with <c>BLOCKDRIVER_SEED</c> (printed) and <c>BLOCKDRIVER_FUZZ_ITERATIONS</c>; iteration i
/// always mutates the same way for the same seed. Trees are made on tmpfs (/dev/shm).</remarks>
public sealed partial class TarFuzzTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan PerIteration = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(20);
    private static readonly byte[] Interesting = [0, 0xff, 0x80, 0x7f, (byte)'0', (byte)'7', (byte)'8', (byte)' ', (byte)'/', (byte)'.', (byte)'\n', (byte)'=', (byte)'1', (byte)'x', (byte)'L', (byte)'S', (byte)'g', (byte)'5', (byte)'2'];

    private readonly string _scratch = Directory.CreateDirectory(Path.Combine("/dev/shm", $"blockdriver-tarfuzz-{Guid.NewGuid():N}")).FullName;

    public void Dispose() => TarCases.RemoveTree(_scratch);

    [Fact]
    public async Task Mutated_tars_apply_or_fail_with_invalid_argument()
    {
        int seed = Environment.GetEnvironmentVariable("BLOCKDRIVER_SEED") is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : Random.Shared.Next(1, 1_000_000);
        int iterations = Environment.GetEnvironmentVariable("BLOCKDRIVER_FUZZ_ITERATIONS") is { } n ? int.Parse(n, CultureInfo.InvariantCulture) : 3000;
        output.WriteLine($"seed {seed} (set BLOCKDRIVER_SEED to reproduce), up to {iterations} iterations within {Budget.TotalSeconds} s");

        List<(string Name, byte[] Tar)> corpus = [.. TarCases.All.Select(c => (c.Key, Build(c.Value).ToArray()))];
        corpus.Add(("gnu long name", [.. LongNameTar()]));
        corpus.Add(("gnu sparse", TarHeaderTests.GnuSparseTar().Tar));
        corpus.Add(("whiteouts", Build(Dir("a"), File("a/x", "1"), Dir("b"), File(B("a/.wh.x"), []), File(B("b/.wh..wh..opq"), []), File(B(".wh.b"), [])).ToArray()));

        var outcomes = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        var seeds = new Random(seed);
        int done = 0;
        using var root = DirectoryHandle.OpenRoot(_scratch);
        for (; done < iterations && clock.Elapsed < Budget && failures.Count < 20; done++)
        {
            var random = new Random(seeds.Next());
            (string name, byte[] original) = corpus[random.Next(corpus.Count)];
            (byte[] tar, string mutations) = Mutate(original, random);
            string context = $"seed {seed} iteration {done}: {name}, {mutations}";
            string tree = $"t{done}";
            Directory.CreateDirectory(Path.Combine(_scratch, tree));
            long allocated = GC.GetTotalAllocatedBytes();
            try
            {
                await Task.Run(() => LayerTarApplier.ApplyAsync(new MemoryStream(tar), Path.Combine(_scratch, tree))).WaitAsync(PerIteration);
                outcomes["applied"] = outcomes.GetValueOrDefault("applied") + 1;
            }
            catch (BlockDriverException e) when (e.Kind == ErrorKind.InvalidArgument)
            {
                string kind = e.Message.Contains(": ", StringComparison.Ordinal) ? Classify(e.Message) : e.Message;
                outcomes[kind] = outcomes.GetValueOrDefault(kind) + 1;
            }
            catch (TimeoutException)
            {
                failures.Add($"{context}: no result within {PerIteration.TotalSeconds} s (hang)");
                break;
            }
            catch (Exception e)
            {
                failures.Add($"{context}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }

            long used = GC.GetTotalAllocatedBytes() - allocated;
            if (used > 64L << 20)
            {
                failures.Add($"{context}: allocated {used >> 20} MiB for a {tar.Length}-byte tar");
            }

            LayerTarApplier.RemoveTree(root, B(tree));
        }

        output.WriteLine($"{done} iterations in {clock.Elapsed.TotalSeconds:F1} s");
        foreach ((string outcome, int count) in outcomes)
        {
            output.WriteLine($"{count,6}  {outcome}");
        }

        foreach (string failure in failures)
        {
            output.WriteLine("FAILURE " + failure);
        }

        Assert.True(failures.Count == 0, $"{failures.Count} mutated tars escaped with another error, hung or allocated without bound (seed {seed}):\n{string.Join("\n\n", failures)}");
        Assert.True(done >= Math.Min(iterations, 200), $"only {done} iterations ran within the budget; the run proves little");
        Assert.True(outcomes.GetValueOrDefault("applied") > 0 && outcomes.Count > 5, "the mutations should both pass and trip many different checks");
    }

    // The kind of a refusal without its entry-specific details: the text after the last ": ", quoted names and
    // digits dropped.
    private static string Classify(string message)
    {
        string tail = message[(message.LastIndexOf(": ", StringComparison.Ordinal) + 2)..];
        tail = QuotedName().Replace(tail, "NAME");
        return new string([.. tail.Where(c => !char.IsDigit(c))]).Trim();
    }

    [System.Text.RegularExpressions.GeneratedRegex("\"[^\"]*\"")]
    private static partial System.Text.RegularExpressions.Regex QuotedName();

    // 1 to 4 changes: header bytes (70%: within a header block, mostly in its numeric fields, type and names) or any
    // byte, set to an interesting or random value; sometimes a truncation or a repeated block; then, mostly, every
    // header's checksum made right again.
    private static (byte[], string) Mutate(byte[] original, Random random)
    {
        var bytes = new List<byte>(original);
        var described = new List<string>();
        List<int> headers = Headers(original);
        int count = 1 + random.Next(4);
        for (int i = 0; i < count; i++)
        {
            int roll = random.Next(100);
            if (roll < 5 && bytes.Count > 512)
            {
                int at = random.Next(bytes.Count);
                bytes.RemoveRange(at, bytes.Count - at);
                described.Add($"truncated at {at}");
            }
            else if (roll < 10 && headers.Count > 0)
            {
                int block = headers[random.Next(headers.Count)];
                if (block + 512 <= bytes.Count)
                {
                    bytes.InsertRange(block, bytes.GetRange(block, 512));
                    described.Add($"header at {block} repeated");
                }
            }
            else
            {
                int at = roll < 80 && headers.Count > 0 ? headers[random.Next(headers.Count)] + random.Next(512) : random.Next(bytes.Count);
                if (at >= bytes.Count)
                {
                    continue;
                }

                byte value = random.Next(3) == 0 ? (byte)random.Next(256) : Interesting[random.Next(Interesting.Length)];
                bytes[at] = value;
                described.Add($"{at}={value:x2}");
            }
        }

        byte[] tar = [.. bytes];
        if (random.Next(10) < 8)
        {
            foreach (int block in Headers(tar, checksumOptional: true))
            {
                TarHeaderBlock.WriteChecksum(tar.AsSpan(block, 512));
            }

            described.Add("checksums fixed");
        }

        return (tar, string.Join(", ", described));
    }

    // Offsets of the blocks that look like headers (ustar magic; with a right checksum unless told otherwise).
    private static List<int> Headers(byte[] tar, bool checksumOptional = false)
    {
        var headers = new List<int>();
        for (int block = 0; block + 512 <= tar.Length; block += 512)
        {
            ReadOnlySpan<byte> b = tar.AsSpan(block, 512);
            if (b[257..262].SequenceEqual("ustar"u8) && (checksumOptional || TarHeaderBlock.ChecksumMatches(b)))
            {
                headers.Add(block);
            }
        }

        return headers;
    }

    private static byte[] LongNameTar()
    {
        byte[] name = [.. B(new string('n', 200)), 0];
        using var tar = new MemoryStream();
        tar.Write(TarHeaderTests.Block(B("././@LongLink"), TarTypeFlag.GnuLongName, name.Length, gnu: true));
        tar.Write(name);
        tar.Write(new byte[512 - name.Length]);
        tar.Write(TarHeaderTests.Block(B("short"), TarTypeFlag.Regular, 5, gnu: true));
        tar.Write("hello"u8);
        tar.Write(new byte[507 + 1024]);
        return tar.ToArray();
    }
}
