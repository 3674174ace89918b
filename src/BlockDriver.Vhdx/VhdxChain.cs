using BlockDriver.Abstractions;

namespace BlockDriver.Vhdx;

/// <summary>A read-only open of a chain of sealed VHDX files (a file and all its parents, down to a file without
/// parent) with one merged index of which file holds which range, built once at open. Any number of
/// <see cref="VhdxDisk"/>s (one writable child each, e.g. one per container) can share it through
/// <see cref="VhdxDisk.Open(string, VhdxChain, VhdxOpenOptions?)"/>.</summary>
/// <remarks>
/// <para>Opening validates the chain exactly as <see cref="VhdxDisk.Open(string, VhdxOpenOptions?)"/> does (parent
/// found by locator, linkage, sizes, loops, depth) and opens every file read-only; nothing is ever written. The
/// files must not change while the chain is open: the index reflects them as they were at open (a parent changed
/// later is what the parent_linkage check refuses at the next open).</para>
/// <para>Resolving costs one array lookup per index block (see <see cref="IndexBlockSize"/>) and a binary search
/// inside the block when several files share it, whatever the depth. Memory, measured: 8 bytes per index block that
/// one file decides whole (data, zero or hole), plus 16 bytes per run in a block that several files share (or one
/// file holds in pieces); <see cref="IndexMemoryBytes"/> reports the total. For example a 256 MiB chain of 65
/// files with 2 MiB blocks, each block split between two files, takes 128 × (8 + 2 × 16) = 5,120 bytes; a 1 TiB
/// chain of whole blocks takes 4 MiB, half of what one file's BAT already holds. The files' sector-bitmap caches are
/// emptied once the index is built.</para>
/// <para>Thread safety: every member may be called concurrently, except <see cref="DisposeAsync"/>, which must
/// wait until no disk or reader uses the chain. The chain owns its files and closes them on dispose; disks opened
/// over it do not dispose it.</para>
/// </remarks>
public sealed class VhdxChain : IAsyncDisposable
{
    private readonly VhdxFile[] _files;
    private readonly ChainIndex _index;
    private readonly HashSet<string> _canonicalPaths;
    private int _disposed;

    private VhdxChain(VhdxFile[] files, ChainIndex index, HashSet<string> canonicalPaths)
    {
        _files = files;
        _index = index;
        _canonicalPaths = canonicalPaths;
    }

    /// <summary>The chain's files, top first, base last, all open read-only.</summary>
    public IReadOnlyList<VhdxFile> Files => _files;

    /// <summary>The top file: the one a child of this chain names as its parent.</summary>
    public VhdxFile Top => _files[0];

    /// <summary>Virtual disk size in bytes (equal in every file of the chain).</summary>
    public long VirtualSize => Top.VirtualSize;

    /// <summary>Logical sector size in bytes (equal in every file): the alignment of reads and of a child's
    /// copy-on-write.</summary>
    public int LogicalSectorSize => Top.LogicalSectorSize;

    /// <summary>Payload block size of the top file in bytes; a child made with default options gets it.</summary>
    public int BlockSize => Top.BlockSize;

    /// <summary>Bytes per index block: the smallest payload block size in the chain.</summary>
    public int IndexBlockSize => _index.BlockSize;

    /// <summary>Index blocks (⌈<see cref="VirtualSize"/> / <see cref="IndexBlockSize"/>⌉).</summary>
    public long IndexBlockCount => _index.BlockCount;

    /// <summary>Bytes the merged index takes in memory (its arrays; see the remarks).</summary>
    public long IndexMemoryBytes => _index.MemoryBytes;

    /// <summary>Opens <paramref name="path"/> and all its parents read-only, validates every link and builds the
    /// index. <see cref="VhdxOpenOptions.ReadOnly"/> is ignored (a chain is always read-only);
    /// <see cref="VhdxOpenOptions.ParentRoot"/> and <see cref="VhdxOpenOptions.MaxChainDepth"/> apply.</summary>
    /// <exception cref="BlockDriverException">NotFound for a missing file or parent; Corrupt for a malformed file,
    /// a broken link (parent changed), a loop or an escaping parent path.</exception>
    public static VhdxChain Open(string path, VhdxOpenOptions? options = null)
    {
        options ??= new VhdxOpenOptions();
        string fullPath = Path.GetFullPath(path);
        var seen = new HashSet<string>(StringComparer.Ordinal) { ChainLinks.CanonicalPath(fullPath) };
        return OpenCore(path, fullPath, path, options, seen, filesAbove: 0, child: null);
    }

    /// <summary>Opens the parents of <paramref name="child"/> (open at <paramref name="childPath"/>, whose
    /// canonical path is in <paramref name="seen"/>) as a chain, checking the child's link to its parent first.</summary>
    internal static VhdxChain OpenParentsOf(VhdxFile child, string childPath, string topPath, VhdxOpenOptions options, HashSet<string> seen)
    {
        string parentPath = ChainLinks.NextParent(child, childPath, topPath, options, seen, filesSoFar: 1);
        return OpenCore(parentPath, parentPath, topPath, options, seen, filesAbove: 1, (child, childPath));
    }

    /// <summary>Appends the extents of [offset, offset + length) to <paramref name="output"/>: data (with the file,
    /// as an index into <see cref="Files"/>, and the offset inside it), Zero (the file whose zero-reading block
    /// hides its parents) or Hole (layer -1: no file has anything). Adjacent extents that continue each other are
    /// merged, also with the list's last extent.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is misaligned or outside the disk.</exception>
    public void Resolve(long offset, long length, List<ChainExtent> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        BlockDeviceGuard.CheckRange(offset, length, VirtualSize, LogicalSectorSize);
        ThrowIfDisposed();
        _index.Resolve(offset, length, 0, output);
    }

    /// <summary>Reads the chain's content at <paramref name="offset"/> (both offset and length aligned to
    /// <see cref="LogicalSectorSize"/>, inside the disk).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is misaligned or outside the disk.</exception>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(offset, buffer.Length, VirtualSize, LogicalSectorSize);
        ThrowIfDisposed();
        List<ChainExtent> extents = ChainReader.Rent();
        _index.Resolve(offset, buffer.Length, 0, extents);
        return ChainReader.ReadAsync(_files, extents, offset, buffer, ct);
    }

    /// <summary>Closes every file of the chain. Safe to call twice.</summary>
    /// <exception cref="AggregateException">Closing one or more files failed (all are closed anyway).</exception>
    public ValueTask DisposeAsync() =>
        Interlocked.Exchange(ref _disposed, 1) == 0 ? ChainLinks.CloseAllAsync(_files) : ValueTask.CompletedTask;

    /// <summary>Resolves for a disk whose own files come before the chain's: layers are shifted by
    /// <paramref name="layerBase"/>. The caller has checked the range.</summary>
    internal void ResolveUnchecked(long offset, long length, int layerBase, List<ChainExtent> output) =>
        _index.Resolve(offset, length, layerBase, output);

    /// <summary>True when <paramref name="canonicalPath"/> (see <see cref="ChainLinks.CanonicalPath"/>) is one of
    /// the chain's files.</summary>
    internal bool Contains(string canonicalPath) => _canonicalPaths.Contains(canonicalPath);

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    // Opens path (fullPath once made absolute) and its parents; topPath is what the caller asked to open.
    private static VhdxChain OpenCore(string path, string fullPath, string topPath, VhdxOpenOptions options, HashSet<string> seen,
        int filesAbove, (VhdxFile File, string Path)? child)
    {
        var files = new List<VhdxFile>();
        try
        {
            // A parent (child is set) must be inside the root; a chain's own top is what the caller named.
            VhdxFile top = VhdxFile.Open(path, readOnly: true, child is null ? null : options.ParentRoot);
            files.Add(top);
            if (child is { } link)
            {
                ChainLinks.CheckLink(link.File, link.Path, top, path);
            }

            ChainLinks.OpenParents(top, fullPath, topPath, options, files, seen, filesAbove);
            ChainIndex index = ChainIndex.Build(files);
            foreach (VhdxFile file in files)
            {
                // Everything the bitmaps say is in the index now; the chain reads only payload from the files.
                file.ReleaseBitmapPages();
            }

            return new VhdxChain([.. files], index, new HashSet<string>(files.Select(f => ChainLinks.CanonicalPath(f.Path)), StringComparer.Ordinal));
        }
        catch
        {
            ChainLinks.CloseAllAsync(files).AsTask().GetAwaiter().GetResult();
            throw;
        }
    }
}
