using System.Numerics;
using System.Runtime.CompilerServices;
using BlockDriver.Abstractions;

namespace BlockDriver.Vhdx;

/// <summary>The merged map of a chain of files that never change: for every index block, which file decides which
/// bytes (data at an offset in that file, zeroes that hide the parents, or a hole). Built once from the files'
/// BATs and sector bitmaps, so that resolving a request costs one array lookup per index block, whatever the
/// chain's depth.</summary>
/// <remarks>
/// <para>Index blocks are as large as the chain's smallest payload block: every file's block boundaries are
/// power-of-two multiples of it, so a file's BAT entry never starts or ends inside an index block.</para>
/// <para>Layout: one 64-bit entry per index block, tagged by its two low bits. 0 hole (no file has anything);
/// 1 zero (bits 2–19: the file whose zero-reading block state hides its parents); 2 data (bits 2–19: the file; bits
/// 20–63: the byte offset of the block's data in that file, which is 1 MiB aligned like every VHDX block, so masking
/// the low 20 bits off gives it, as in a BAT entry); 3 mixed (bits 2–33: index of the block's first
/// <see cref="IndexRun"/>, bits 34–63: how many). A block one file decides whole costs 8 bytes; any other block
/// 8 bytes plus 16 per run, one run per change of file or of file offset inside the block.</para>
/// <para>Thread safety: immutable once built; any number of threads may resolve at once.</para>
/// </remarks>
internal sealed class ChainIndex
{
    /// <summary>Most files a chain may hold: the file field of an entry is 18 bits wide.</summary>
    public const int MaxFiles = 1 << 18;

    /// <summary>Index blocks decided per pass of the build; bounds its temporary lists (1024 blocks are 1 GiB to
    /// 256 GiB).</summary>
    internal const int WindowBlocks = 1024;

    private const ulong TagMask = 3;
    private const ulong TagHole = 0;
    private const ulong TagZero = 1;
    private const ulong TagData = 2;
    private const ulong TagMixed = 3;
    private const int LayerShift = 2;
    private const ulong LayerMask = MaxFiles - 1;
    private const ulong DataOffsetMask = 0xFFFF_FFFF_FFF0_0000;
    private const int CountShift = 34;


    private readonly ulong[] _entries;
    private readonly IndexRun[] _runs;
    private readonly int _shift;
    private readonly long _virtualSize;

    private ChainIndex(ulong[] entries, IndexRun[] runs, int shift, long virtualSize)
    {
        _entries = entries;
        _runs = runs;
        _shift = shift;
        _virtualSize = virtualSize;
    }

    /// <summary>Bytes per index block.</summary>
    public int BlockSize => 1 << _shift;

    /// <summary>Index blocks (the last may be short).</summary>
    public long BlockCount => _entries.LongLength;

    /// <summary>Runs of the mixed blocks, all together.</summary>
    public long RunCount => _runs.LongLength;

    /// <summary>Bytes the entry and run arrays take.</summary>
    public long MemoryBytes => (_entries.LongLength * sizeof(ulong)) + (_runs.LongLength * Unsafe.SizeOf<IndexRun>());

    /// <summary>Builds the index of <paramref name="files"/> (top first, a parentless base last, all of one virtual
    /// size and sector size, as a validated chain is). Reads the sector bitmaps the files point to.</summary>
    /// <exception cref="BlockDriverException">InvalidArgument for a chain of more than <see cref="MaxFiles"/>
    /// files.</exception>
    public static ChainIndex Build(IReadOnlyList<VhdxFile> files)
    {
        if (files.Count > MaxFiles)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"{files[0].Path}: a chain of {files.Count} files is longer than the {MaxFiles} a chain index can hold.");
        }

        int blockSize = files.Min(f => f.BlockSize);
        int shift = BitOperations.Log2((uint)blockSize);
        long virtualSize = files[0].VirtualSize;
        long blocks = (virtualSize + blockSize - 1) >> shift;
        var entries = new ulong[blocks];
        var runs = new List<IndexRun>();
        var builder = new Builder(files);
        for (long first = 0; first < blocks; first += WindowBlocks)
        {
            long last = Math.Min(first + WindowBlocks, blocks);
            long start = first << shift;
            long end = Math.Min(last << shift, virtualSize);
            List<ChainExtent> decided = builder.Decide(start, end - start);
            int next = 0;
            for (long block = first; block < last; block++)
            {
                long blockStart = block << shift;
                long blockEnd = Math.Min(blockStart + blockSize, virtualSize);
                entries[block] = builder.Encode(decided, ref next, blockStart, blockEnd, runs);
            }
        }

        return new ChainIndex(entries, [.. runs], shift, virtualSize);
    }

    /// <summary>Appends the extents of [offset, offset + length) to <paramref name="output"/>, merged with its last
    /// extent where they continue it. Layers are chain indices plus <paramref name="layerBase"/> (holes stay -1).
    /// The caller has checked the range.</summary>
    public void Resolve(long offset, long length, int layerBase, List<ChainExtent> output)
    {
        long end = offset + length;
        long block = offset >> _shift;
        while (offset < end)
        {
            long blockStart = block << _shift;
            long blockEnd = Math.Min(blockStart + (1L << _shift), _virtualSize);
            long stop = Math.Min(blockEnd, end);
            ulong entry = _entries[block];
            switch (entry & TagMask)
            {
                case TagHole:
                    Append(output, new ChainExtent(offset, stop - offset, ExtentKind.Hole, -1, -1));
                    break;
                case TagZero:
                    Append(output, new ChainExtent(offset, stop - offset, ExtentKind.Zero, layerBase + Layer(entry), -1));
                    break;
                case TagData:
                    Append(output, new ChainExtent(offset, stop - offset, ExtentKind.Data, layerBase + Layer(entry),
                        (long)(entry & DataOffsetMask) + (offset - blockStart)));
                    break;
                default:
                    ResolveMixed(entry, blockStart, (int)(blockEnd - blockStart), (int)(offset - blockStart), (int)(stop - blockStart), layerBase, output);
                    break;
            }

            offset = stop;
            block++;
        }
    }

    /// <summary>Adds <paramref name="extent"/> to <paramref name="output"/>, or lengthens the last extent when the
    /// new one continues it (same kind and file, and for data the next bytes of that file). Every producer of chain
    /// extents merges this way, so that the same chain gives the same list however it is resolved.</summary>
    public static void Append(List<ChainExtent> output, ChainExtent extent)
    {
        if (output.Count > 0)
        {
            ChainExtent last = output[^1];
            if (last.Kind == extent.Kind && last.Layer == extent.Layer && last.Offset + last.Length == extent.Offset
                && (extent.FileOffset < 0 || last.FileOffset + last.Length == extent.FileOffset))
            {
                output[^1] = last with { Length = last.Length + extent.Length };
                return;
            }
        }

        output.Add(extent);
    }

    private static int Layer(ulong entry) => (int)((entry >> LayerShift) & LayerMask);

    private void ResolveMixed(ulong entry, long blockStart, int blockLength, int from, int to, int layerBase, List<ChainExtent> output)
    {
        int first = (int)((entry >> LayerShift) & uint.MaxValue);
        int end = first + (int)(entry >> CountShift);

        // The last run starting at or before `from` (the first run starts at 0).
        int lo = first;
        int hi = end - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >>> 1;
            if (_runs[mid].Start <= from)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }

        for (int i = lo; i < end; i++)
        {
            IndexRun run = _runs[i];
            int runEnd = i + 1 < end ? _runs[i + 1].Start : blockLength;
            int pieceStart = Math.Max(run.Start, from);
            int pieceEnd = Math.Min(runEnd, to);
            long at = blockStart + pieceStart;
            int length = pieceEnd - pieceStart;
            Append(output, run.Layer < 0
                ? new ChainExtent(at, length, ExtentKind.Hole, -1, -1)
                : run.FileOffset < 0
                    ? new ChainExtent(at, length, ExtentKind.Zero, layerBase + run.Layer, -1)
                    : new ChainExtent(at, length, ExtentKind.Data, layerBase + run.Layer, run.FileOffset + (pieceStart - run.Start)));
            if (runEnd >= to)
            {
                break;
            }
        }
    }

    // The build's working lists, reused window after window.
    private sealed class Builder(IReadOnlyList<VhdxFile> files)
    {
        private readonly List<ChainExtent> _decided = [];
        private readonly List<BlockRun> _fileRuns = [];
        private readonly List<IndexRun> _blockRuns = [];
        private List<BlockRun> _pending = [];
        private List<BlockRun> _next = [];

        // Resolves [offset, offset + length) level by level: each file is asked only about the ranges every file
        // above it leaves to its parent. Returns the decided extents sorted by offset, covering the range.
        public List<ChainExtent> Decide(long offset, long length)
        {
            _decided.Clear();
            _pending.Clear();
            _pending.Add(new BlockRun(offset, length, RunKind.Parent, 0));
            for (int layer = 0; layer < files.Count && _pending.Count > 0; layer++)
            {
                _next.Clear();
                foreach (BlockRun range in _pending)
                {
                    _fileRuns.Clear();
                    files[layer].Resolve(range.Offset, range.Length, _fileRuns);
                    foreach (BlockRun run in _fileRuns)
                    {
                        switch (run.Kind)
                        {
                            case RunKind.Present:
                                _decided.Add(new ChainExtent(run.Offset, run.Length, ExtentKind.Data, layer, run.FileOffset));
                                break;
                            case RunKind.Zero:
                                _decided.Add(new ChainExtent(run.Offset, run.Length, ExtentKind.Zero, layer, -1));
                                break;
                            case RunKind.Parent:
                                _next.Add(run);
                                break;
                            default:
                                _decided.Add(new ChainExtent(run.Offset, run.Length, ExtentKind.Hole, -1, -1));
                                break;
                        }
                    }
                }

                (_pending, _next) = (_next, _pending);
            }

            // A chain ends with a file without parent, whose absent blocks are holes; nothing is left pending unless
            // the last file has a parent that is not part of the chain, which reads as absent too.
            foreach (BlockRun range in _pending)
            {
                _decided.Add(new ChainExtent(range.Offset, range.Length, ExtentKind.Hole, -1, -1));
            }

            _decided.Sort(static (a, b) => a.Offset.CompareTo(b.Offset));
            return _decided;
        }

        // Encodes [blockStart, blockEnd) from the decided extents, starting at decided[next] and advancing it past
        // the extents that end inside the block.
        public ulong Encode(List<ChainExtent> decided, ref int next, long blockStart, long blockEnd, List<IndexRun> runs)
        {
            _blockRuns.Clear();
            long position = blockStart;
            while (position < blockEnd)
            {
                ChainExtent extent = decided[next];
                long extentEnd = extent.Offset + extent.Length;
                long fileOffset = extent.Kind == ExtentKind.Data ? extent.FileOffset + (position - extent.Offset) : -1;
                int layer = extent.Kind == ExtentKind.Hole ? -1 : extent.Layer;
                AddRun(new IndexRun((int)(position - blockStart), layer, fileOffset));
                position = Math.Min(extentEnd, blockEnd);
                if (position == extentEnd)
                {
                    next++;
                }
            }

            if (_blockRuns.Count == 1)
            {
                IndexRun only = _blockRuns[0];
                if (only.Layer < 0)
                {
                    return TagHole;
                }

                if (only.FileOffset < 0)
                {
                    return ((ulong)only.Layer << LayerShift) | TagZero;
                }

                if (((ulong)only.FileOffset & ~DataOffsetMask) == 0)
                {
                    return (ulong)only.FileOffset | ((ulong)only.Layer << LayerShift) | TagData;
                }
            }

            int first = runs.Count;
            runs.AddRange(_blockRuns);
            return ((ulong)_blockRuns.Count << CountShift) | ((ulong)(uint)first << LayerShift) | TagMixed;
        }

        private void AddRun(IndexRun run)
        {
            if (_blockRuns.Count > 0)
            {
                IndexRun last = _blockRuns[^1];
                bool sameFile = last.Layer == run.Layer;
                bool bothEmpty = last.FileOffset < 0 && run.FileOffset < 0;
                bool continuesData = last.FileOffset >= 0 && last.FileOffset + (run.Start - last.Start) == run.FileOffset;
                if (sameFile && (bothEmpty || continuesData))
                {
                    return;
                }
            }

            _blockRuns.Add(run);
        }
    }
}
