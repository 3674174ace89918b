using System.Globalization;
using System.Text;
using BlockDriver.Abstractions;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace BlockDriver.Testing;

/// <summary>
/// Model-based random test for an <see cref="IBlockDevice"/>: replays thousands of random writes, FUA writes, reads,
/// flushes, trims, write-zeroes and maps against the device and a plain byte array, and compares every read byte for
/// byte. Implementations subclass it with a factory, and may override <see cref="ReopenAsync"/> to test persistence.
/// </summary>
/// <remarks>
/// Reproducible: each run prints its seed; set <c>BLOCKDRIVER_SEED</c> to replay it (it replaces the random seed
/// case), and <c>BLOCKDRIVER_OPS</c> to change the operation count. A failure names the seed, the operation index
/// and the operations leading up to it.
/// </remarks>
public abstract class BlockDeviceModelTests : IAsyncLifetime
{
    /// <summary>Environment variable holding the seed for the random-seed case.</summary>
    public const string SeedVariable = "BLOCKDRIVER_SEED";

    /// <summary>Environment variable overriding <see cref="OperationCount"/>.</summary>
    public const string OperationsVariable = "BLOCKDRIVER_OPS";

    private const int SeedFromEnvironmentOrRandom = 0;
    private const int HistoryLength = 24;
    private const int FullCheckInterval = 500;

    private TempDirectory? _temp;

    /// <summary>Takes xunit's output helper, where the seed and a summary of each run go.</summary>
    protected BlockDeviceModelTests(ITestOutputHelper output)
    {
        Output = output;
    }

    /// <summary>The test's output, shown by the runner for failed tests (and with detailed verbosity).</summary>
    protected ITestOutputHelper Output { get; }

    /// <summary>Sector size the factory is asked for; at least 16 bytes (each sector carries a stamp).</summary>
    protected virtual int SectorSize => 512;

    /// <summary>The implementation's allocation unit; writes range from one sector to three of these and cluster
    /// around their boundaries.</summary>
    protected virtual int ModelBlockSize => 1 << 20;

    /// <summary>Device length in bytes; at most 2 GiB, since the model is one array.</summary>
    protected virtual long DeviceLength => 8L * ModelBlockSize;

    /// <summary>Random operations per run.</summary>
    protected virtual int OperationCount => 3000;

    /// <summary>True when trimmed sectors read as zeroes; otherwise they may read as anything until rewritten.</summary>
    protected virtual bool TrimReadsZeroes => false;

    /// <summary>A per-test temporary directory, created on first use and deleted after the test.</summary>
    protected TempDirectory Temp => _temp ??= new TempDirectory(GetType().Name);

    /// <inheritdoc/>
    public Task InitializeAsync() => Task.CompletedTask;

    /// <inheritdoc/>
    public async Task DisposeAsync()
    {
        try
        {
            await CleanupAsync();
        }
        finally
        {
            _temp?.Dispose();
        }
    }

    /// <summary>Creates a writable device of <paramref name="length"/> bytes that reads as zeroes everywhere.</summary>
    protected abstract Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize);

    /// <summary>Called now and then right after a flush: close <paramref name="device"/> and open it again, returning
    /// the new instance (the test disposes whatever this returns). The default keeps the same device.</summary>
    protected virtual Task<IBlockDevice> ReopenAsync(IBlockDevice device) => Task.FromResult(device);

    /// <summary>Releases what the factory created besides the device; runs after the test, pass or fail.</summary>
    protected virtual Task CleanupAsync() => Task.CompletedTask;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(SeedFromEnvironmentOrRandom)]
    public async Task Random_operations_match_a_byte_array_model(int seed)
    {
        if (seed == SeedFromEnvironmentOrRandom)
        {
            seed = Environment.GetEnvironmentVariable(SeedVariable) is { Length: > 0 } value
                ? int.Parse(value, CultureInfo.InvariantCulture)
                : Random.Shared.Next(4, int.MaxValue);
        }

        int operations = Environment.GetEnvironmentVariable(OperationsVariable) is { Length: > 0 } count
            ? int.Parse(count, CultureInfo.InvariantCulture)
            : OperationCount;
        Output.WriteLine($"{GetType().Name}: seed {seed} (set {SeedVariable}={seed} to repeat), {operations} operations, " +
                         $"{DeviceLength} bytes, {SectorSize}-byte sectors, {ModelBlockSize}-byte blocks.");

        var run = new Run(this, seed);
        IBlockDevice device = await CreateDeviceAsync(DeviceLength, SectorSize);
        try
        {
            for (run.Index = 0; run.Index < operations; run.Index++)
            {
                device = await run.StepAsync(device);
                if ((run.Index + 1) % FullCheckInterval == 0)
                {
                    await run.CheckWholeDeviceAsync(device, "periodic full read");
                }
            }

            run.Index = operations;
            await run.CheckWholeDeviceAsync(device, "final full read");
            run.Record("flush and reopen");
            await device.FlushAsync();
            device = await ReopenAsync(device);
            await run.CheckWholeDeviceAsync(device, "full read after the final reopen");
        }
        finally
        {
            await device.DisposeAsync();
        }

        Output.WriteLine(run.Summary());
    }

    // One run's state: the model, the generator, per-kind counters and the recent history for failure messages.
    private sealed class Run
    {
        private readonly BlockDeviceModelTests _suite;
        private readonly int _seed;
        private readonly Random _rng;
        private readonly ByteArrayDeviceModel _model;
        private readonly Queue<string> _history = new();
        private readonly Dictionary<string, int> _counts = [];
        private readonly int _sectorSize;
        private readonly long _sectors;

        // Reused for every request, as real callers reuse theirs: a device that keeps a reference to a caller's
        // buffer after the call completes shows up as a mismatch.
        private readonly byte[] _writeBuffer;
        private readonly byte[] _readBuffer;

        public Run(BlockDeviceModelTests suite, int seed)
        {
            _suite = suite;
            _seed = seed;
            _rng = new Random(seed);
            _sectorSize = suite.SectorSize;
            _sectors = suite.DeviceLength / _sectorSize;
            _model = new ByteArrayDeviceModel(suite.DeviceLength, _sectorSize);
            int largest = (int)Math.Min(3L * suite.ModelBlockSize, suite.DeviceLength);
            _writeBuffer = new byte[largest];
            _readBuffer = new byte[largest];
        }

        public int Index { get; set; }

        public async Task<IBlockDevice> StepAsync(IBlockDevice device)
        {
            int roll = _rng.Next(100);
            string kind = roll switch
            {
                < 30 => "write",
                < 36 => "FUA write",
                < 64 => "read",
                < 74 => "write-zeroes",
                < 84 => "trim",
                < 92 => "map",
                _ => "flush",
            };
            (long offset, long length) = kind switch
            {
                "read" or "map" => PickRange(maxBlocks: 2),
                "write-zeroes" or "trim" when _rng.Next(50) == 0 => (0, _sectors * _sectorSize),
                "flush" => (0, 0),
                _ => PickRange(maxBlocks: 3),
            };
            bool reopen = kind == "flush" && _rng.Next(4) == 0;
            string description = kind == "flush" ? (reopen ? "flush and reopen" : "flush") : $"{kind} [{offset}, +{length})";
            Record(description);
            _counts[kind] = _counts.GetValueOrDefault(kind) + 1;

            try
            {
                switch (kind)
                {
                    case "write":
                    case "FUA write":
                        Memory<byte> data = _writeBuffer.AsMemory(0, (int)length);
                        TestPatterns.Fill(data.Span, _rng.NextInt64());
                        ByteArrayDeviceModel.Stamp(data.Span, Index, offset, _sectorSize);
                        await device.WriteAsync(offset, data, forceUnitAccess: kind == "FUA write");
                        _model.Write(offset, data.Span);
                        break;
                    case "read":
                        Memory<byte> read = _readBuffer.AsMemory(0, (int)length);
                        read.Span.Fill(0xA5);
                        await device.ReadAsync(offset, read);
                        Expect(_model.Compare(offset, read.Span));
                        break;
                    case "write-zeroes":
                        await device.WriteZeroesAsync(offset, length);
                        _model.Zero(offset, length);
                        break;
                    case "trim":
                        await device.TrimAsync(offset, length);
                        _model.Trim(offset, length, _suite.TrimReadsZeroes);
                        break;
                    case "map":
                        IReadOnlyList<Extent> extents = await device.MapToListAsync(offset, length);
                        DeviceAssert.ExtentsCover(extents, offset, length, _sectorSize);
                        foreach (Extent extent in extents)
                        {
                            Expect(_model.Check(extent));
                        }

                        break;
                    default:
                        await device.FlushAsync();
                        if (reopen)
                        {
                            device = await _suite.ReopenAsync(device);
                            Assert.Equal(_suite.DeviceLength, device.Length);
                        }

                        break;
                }
            }
            catch (Exception ex) when (ex is not XunitException)
            {
                throw new XunitException($"{Context()}\nThe device threw {ex.GetType().Name}: {ex.Message}", ex);
            }
            catch (XunitException ex) when (!ex.Message.StartsWith("Seed ", StringComparison.Ordinal))
            {
                throw new XunitException($"{Context()}\n{ex.Message}", ex);
            }

            return device;
        }

        public async Task CheckWholeDeviceAsync(IBlockDevice device, string what)
        {
            int chunk = _suite.ModelBlockSize;
            for (long offset = 0; offset < _suite.DeviceLength; offset += chunk)
            {
                int length = (int)Math.Min(chunk, _suite.DeviceLength - offset);
                Memory<byte> read = _readBuffer.AsMemory(0, length);
                read.Span.Fill(0xA5);
                await device.ReadAsync(offset, read);
                if (_model.Compare(offset, read.Span) is { } difference)
                {
                    Assert.Fail($"{Context()}\n{what} at [{offset}, +{length}): {difference}");
                }
            }
        }

        public void Record(string description)
        {
            _history.Enqueue($"  #{Index}: {description}");
            if (_history.Count > HistoryLength)
            {
                _history.Dequeue();
            }
        }

        public string Summary() =>
            $"passed: {string.Join(", ", _counts.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Value} {c.Key}"))}.";

        private void Expect(string? difference)
        {
            if (difference is not null)
            {
                Assert.Fail($"{Context()}\n{difference}");
            }
        }

        private string Context()
        {
            var text = new StringBuilder();
            text.Append(CultureInfo.InvariantCulture,
                $"Seed {_seed} (set {SeedVariable}={_seed} to repeat), operation {Index}. Last operations:");
            foreach (string line in _history)
            {
                text.Append('\n').Append(line);
            }

            string context = text.ToString();
            _suite.Output.WriteLine(context);
            return context;
        }

        // A sector-aligned range: mostly short, sometimes up to maxBlocks blocks, often around a block boundary.
        private (long Offset, long Length) PickRange(int maxBlocks)
        {
            long blockSectors = _suite.ModelBlockSize / _sectorSize;
            long maxSectors = _rng.Next(100) switch
            {
                < 50 => 8,
                < 80 => Math.Max(1, blockSectors / 8),
                < 95 => blockSectors,
                _ => maxBlocks * blockSectors,
            };
            long sectors = Math.Min(_rng.NextInt64(1, maxSectors + 1), _sectors);
            long start;
            if (_rng.Next(3) == 0)
            {
                // Start or end within 8 sectors of a block boundary.
                long boundary = _rng.NextInt64(0, (_sectors / blockSectors) + 1) * blockSectors;
                start = boundary + _rng.Next(-8, 9) - (_rng.Next(2) == 0 ? sectors : 0);
            }
            else
            {
                start = _rng.NextInt64(0, _sectors - sectors + 1);
            }

            start = Math.Clamp(start, 0, _sectors - sectors);
            return (start * _sectorSize, sectors * _sectorSize);
        }
    }
}
