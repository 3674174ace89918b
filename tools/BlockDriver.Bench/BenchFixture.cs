using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using BlockDriver.Abstractions;
using BlockDriver.Vhdx;

namespace BlockDriver.Bench;

/// <summary>The prepared devices of one benchmark, all in one work directory (which the caller deletes):
/// <list type="bullet">
/// <item><c>raw.img</c>: a raw file with data everywhere (the baseline).</item>
/// <item><c>dynamic.vhdx</c>: a dynamic VHDX with data everywhere; also the base of every chain.</item>
/// <item><c>chainN-KK.vhdx</c>: layer K of the depth-N chain, a differencing file over layer K−1 (layer 1 over
/// the base). Slice unit u (1 MiB) is rewritten in layer u mod (N+1); units with u mod (N+1) = 0 exist only in
/// the base, so the data of a read at the top lies in any of the N+1 files. A chain row opens its top with
/// <see cref="VhdxDisk.Open(string, VhdxOpenOptions?)"/>, which indexes the parents once at open (outside the
/// timing), so a read costs the top file's own lookup plus one index lookup, whatever N.</item>
/// </list>
/// Every sector carries <see cref="DataPattern"/> headers, and <see cref="VerifyAsync"/> checks that reads at the
/// top of each device return the layer they should.</summary>
internal sealed class BenchFixture
{
    /// <summary>Granularity of the chain slices: one sequential request, half a default 2 MiB VHDX block, so
    /// every layer's blocks are partially present and resolved through the sector bitmap.</summary>
    public const int SliceUnit = 1024 * 1024;

    private static readonly VhdxOpenOptions ReadOnly = new() { ReadOnly = true };

    private readonly string _directory;
    private readonly long _size;
    private readonly int _seed;
    private readonly List<BenchTarget> _targets = [];
    private readonly List<string> _indexNotes = [];

    private BenchFixture(string directory, long size, int seed)
    {
        _directory = directory;
        _size = size;
        _seed = seed;
    }

    /// <summary>Baseline first, then the dynamic VHDX, then the chains by increasing depth.</summary>
    public IReadOnlyList<BenchTarget> Targets => _targets;

    /// <summary>One line per chain: its merged index's size and build time.</summary>
    public IReadOnlyList<string> IndexNotes => _indexNotes;

    /// <summary>Writes every device's data (progress on <paramref name="log"/>) and returns the fixture.</summary>
    public static async Task<BenchFixture> BuildAsync(string directory, long size, IReadOnlyList<int> depths, int seed,
        TextWriter log, CancellationToken ct)
    {
        var fixture = new BenchFixture(directory, size, seed);
        byte[] rented = ArrayPool<byte>.Shared.Rent(SliceUnit);
        try
        {
            Memory<byte> buffer = rented.AsMemory(0, SliceUnit);
            DataPattern.FillNoise(buffer.Span, seed);

            string raw = fixture.PathOf("raw.img");
            await log.WriteLineAsync($"  {raw}");
            await using (IBlockDevice rawDevice = FileBlockDevice.Create(raw, size))
            {
                await fixture.WriteSliceAsync(rawDevice, buffer, layer: 0, layers: 1, ct);
            }

            string rawWriter = fixture.PathOf("raw-write.img");
            fixture._targets.Add(new BenchTarget(
                "raw file",
                () => FileBlockDevice.Open(raw, readOnly: true),
                _ => Task.FromResult<IBlockDevice>(FileBlockDevice.Create(rawWriter, size)),
                rawWriter)
            { IsBaseline = true });

            string dynamic = fixture.PathOf("dynamic.vhdx");
            await log.WriteLineAsync($"  {dynamic}");
            VhdxFile.CreateDynamic(dynamic, size);
            await using (IBlockDevice dynamicDevice = VhdxDisk.Open(dynamic))
            {
                await fixture.WriteSliceAsync(dynamicDevice, buffer, layer: 0, layers: 1, ct);
            }

            string dynamicWriter = fixture.PathOf("dynamic-write.vhdx");
            fixture._targets.Add(new BenchTarget(
                "dynamic VHDX",
                () => VhdxDisk.Open(dynamic, ReadOnly),
                _ =>
                {
                    VhdxFile.CreateDynamic(dynamicWriter, size);
                    return Task.FromResult<IBlockDevice>(VhdxDisk.Open(dynamicWriter));
                },
                dynamicWriter));

            foreach (int depth in depths)
            {
                string top = await fixture.BuildChainAsync(dynamic, depth, buffer, log, ct);
                await fixture.DescribeIndexAsync(top, depth, log);
                string writer = fixture.PathOf(string.Create(CultureInfo.InvariantCulture, $"chain{depth}-write.vhdx"));
                fixture._targets.Add(new BenchTarget(
                    string.Create(CultureInfo.InvariantCulture, $"chain depth {depth}"),
                    () => VhdxDisk.Open(top, ReadOnly),
                    async c =>
                    {
                        await VhdxFile.CreateDifferencingAsync(writer, top, ct: c);
                        return VhdxDisk.Open(writer);
                    },
                    writer)
                { ChainDepth = depth });
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }

        return fixture;
    }

    /// <summary>Reads one sector run of 4 KiB in every slice unit of every device (at a seeded position inside the
    /// unit) and checks that it came from the layer that should hold it.</summary>
    /// <exception cref="InvalidOperationException">A read returned the wrong data.</exception>
    public async Task VerifyAsync(CancellationToken ct)
    {
        byte[] buffer = new byte[Workload.RandomIoSize];
        var random = new Random(_seed);
        foreach (BenchTarget target in _targets)
        {
            await using (IBlockDevice device = target.OpenReader())
            {
                for (long unit = 0; unit < _size / SliceUnit; unit++)
                {
                    long offset = (unit * SliceUnit) + (random.Next(SliceUnit / buffer.Length) * buffer.Length);
                    int layer = target.ChainDepth is int depth ? (int)(unit % (depth + 1)) : 0;
                    await device.ReadAsync(offset, buffer, ct);
                    if (DataPattern.Check(buffer, offset, layer) is string problem)
                    {
                        throw new InvalidOperationException($"{target.Name}: {problem}.");
                    }
                }
            }
        }
    }

    // Opens the chain once as a VhdxChain (the whole chain, top included) to report its index: what every chain row
    // pays at open, and keeps in memory.
    private async Task DescribeIndexAsync(string top, int depth, TextWriter log)
    {
        var watch = Stopwatch.StartNew();
        VhdxChain chain = VhdxChain.Open(top);
        await using (chain)
        {
            watch.Stop();
            string note = string.Create(CultureInfo.InvariantCulture,
                $"Chain depth {depth}: merged index of {chain.Files.Count} files, {chain.IndexBlockCount} blocks of {chain.IndexBlockSize >> 20} MiB, {chain.IndexMemoryBytes} bytes ({(double)chain.IndexMemoryBytes / chain.IndexBlockCount:F1} per block), built in {watch.Elapsed.TotalMilliseconds:F1} ms.");
            _indexNotes.Add(note);
            await log.WriteLineAsync("    " + note);
        }
    }

    // Builds chainN-01 … chainN-NN over the base; returns the top file's path.
    private async Task<string> BuildChainAsync(string basePath, int depth, Memory<byte> buffer, TextWriter log, CancellationToken ct)
    {
        string parent = basePath;
        await log.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"  {PathOf($"chain{depth}-*.vhdx")} ({depth} layer{(depth == 1 ? "" : "s")} over dynamic.vhdx)"));
        for (int layer = 1; layer <= depth; layer++)
        {
            string path = PathOf(string.Create(CultureInfo.InvariantCulture, $"chain{depth}-{layer:D2}.vhdx"));
            await VhdxFile.CreateDifferencingAsync(path, parent, ct: ct);
            await using (IBlockDevice disk = VhdxDisk.Open(path))
            {
                await WriteSliceAsync(disk, buffer, layer, depth + 1, ct);
            }

            parent = path;
        }

        return parent;
    }

    // Writes the units u with u mod layers = layer, stamped with the layer, and flushes.
    private async Task WriteSliceAsync(IBlockDevice device, Memory<byte> buffer, int layer, int layers, CancellationToken ct)
    {
        for (long unit = layer; unit < _size / SliceUnit; unit += layers)
        {
            long offset = unit * SliceUnit;
            DataPattern.Stamp(buffer.Span, offset, layer);
            await device.WriteAsync(offset, buffer, ct: ct);
        }

        await device.FlushAsync(ct);
    }

    private string PathOf(string name) => Path.Combine(_directory, name);
}
