using System.Runtime.CompilerServices;
using BlockDriver.Abstractions;

namespace BlockDriver.Vhdx;

/// <summary>A virtual disk: a VHDX file and, for a differencing file, its chain of parents, as one
/// <see cref="IBlockDevice"/>. Writes, trims and zeroes go to the top file only; a read resolves in the top file,
/// and every run the top file leaves to its parent is looked up in the parents' merged index
/// (<see cref="VhdxChain"/>), so reads cost the same at any chain depth.</summary>
/// <remarks>
/// <para>Opening validates every link: the parent must exist (found by relative path, then absolute path), its
/// current DataWriteGuid must equal the child's <c>parent_linkage</c> (or <c>parent_linkage2</c>), sector size
/// and virtual size must match, and no file may appear twice.</para>
/// <para>The parents are always read-only. <see cref="Open(string, VhdxOpenOptions?)"/> opens them as a private
/// <see cref="VhdxChain"/> that the disk owns; <see cref="Open(string, VhdxChain, VhdxOpenOptions?)"/> uses a chain
/// shared with other disks, which it never disposes. Disposing commits the top file and closes it (and a private
/// chain).</para>
/// <para>Thread safety: as <see cref="VhdxFile"/>, concurrent requests on disjoint sector ranges are safe.</para>
/// </remarks>
public sealed class VhdxDisk : IBlockDevice
{
    [ThreadStatic]
    private static List<BlockRun>? _scratch;

    private readonly VhdxFile _top;
    private readonly VhdxChain? _chain;
    private readonly bool _ownsChain;
    private readonly VhdxFile[] _files;

    private VhdxDisk(VhdxFile top, VhdxChain? chain, bool ownsChain)
    {
        _top = top;
        _chain = chain;
        _ownsChain = ownsChain;
        _files = chain is null ? [top] : [top, .. chain.Files];
    }

    /// <summary>The chain, top file first, base last: index 0 is <see cref="Top"/>, index i ≥ 1 is
    /// <see cref="VhdxChain.Files"/>[i − 1] of <see cref="Chain"/>. <see cref="ChainExtent.Layer"/> indexes it.</summary>
    public IReadOnlyList<VhdxFile> Files => _files;

    /// <summary>The top (writable) file.</summary>
    public VhdxFile Top => _top;

    /// <summary>The parents, with their merged index; null when the top file has no parent.</summary>
    public VhdxChain? Chain => _chain;

    /// <inheritdoc/>
    public long Length => Top.VirtualSize;

    /// <inheritdoc/>
    public int SectorSize => Top.LogicalSectorSize;

    /// <inheritdoc/>
    public bool IsReadOnly => Top.IsReadOnly;

    /// <summary>Opens <paramref name="path"/> (writable unless <see cref="VhdxOpenOptions.ReadOnly"/>) and its parents,
    /// which it indexes as a private <see cref="VhdxChain"/>.</summary>
    /// <exception cref="BlockDriverException">NotFound for a missing file or parent; Corrupt for a malformed file,
    /// a broken link (parent changed), a loop or an escaping parent path.</exception>
    public static VhdxDisk Open(string path, VhdxOpenOptions? options = null)
    {
        options ??= new VhdxOpenOptions();
        VhdxFile? top = null;
        VhdxChain? chain = null;
        try
        {
            // The whole chain is validated with every file read-only; only then is the top reopened for writing,
            // so that refusing a chain never changes a file (a writable open updates the headers at once).
            string fullPath = Path.GetFullPath(path);
            top = VhdxFile.Open(path, readOnly: true);
            if (top.HasParent)
            {
                var seen = new HashSet<string>(StringComparer.Ordinal) { ChainLinks.CanonicalPath(fullPath) };
                chain = VhdxChain.OpenParentsOf(top, fullPath, path, options, seen);
            }

            if (!options.ReadOnly)
            {
                top = ReopenWritable(top, path, chain);
            }

            return new VhdxDisk(top, chain, ownsChain: true);
        }
        catch
        {
            top?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            chain?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }

    /// <summary>Opens only <paramref name="path"/> (writable unless <see cref="VhdxOpenOptions.ReadOnly"/>) as a
    /// child of <paramref name="parent"/>, a chain that other disks may share. The file's parent locator must
    /// resolve to <paramref name="parent"/>'s top file, and the link must hold (parent_linkage, sizes). The disk
    /// does not dispose <paramref name="parent"/>; the caller keeps it open until every disk over it is disposed.</summary>
    /// <exception cref="BlockDriverException">NotFound for a missing file or parent; InvalidArgument when the file has
    /// no parent or its parent is not <paramref name="parent"/>'s top; Corrupt for a malformed file, a broken link,
    /// a loop, a chain deeper than <see cref="VhdxOpenOptions.MaxChainDepth"/> or an escaping parent path.</exception>
    /// <exception cref="ObjectDisposedException"><paramref name="parent"/> is disposed.</exception>
    public static VhdxDisk Open(string path, VhdxChain parent, VhdxOpenOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(parent);
        parent.ThrowIfDisposed();
        options ??= new VhdxOpenOptions();
        VhdxFile? top = null;
        try
        {
            string fullPath = Path.GetFullPath(path);
            top = VhdxFile.Open(path, readOnly: true);
            CheckSharedParent(top, path, fullPath, parent, options);
            if (!options.ReadOnly)
            {
                top = ReopenWritable(top, path, parent);
            }

            return new VhdxDisk(top, parent, ownsChain: false);
        }
        catch
        {
            top?.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }

    /// <summary>Finds the file a differencing file's locator names, trying relative_path, volume_path and
    /// absolute_win32_path in the spec's order.</summary>
    /// <exception cref="BlockDriverException">NotFound when no candidate inside <paramref name="parentRoot"/> exists;
    /// Corrupt when none does and a candidate lies outside it (symbolic links resolved); the message then says only
    /// "not inside", never whether or what the outside file is.</exception>
    public static string ResolveParent(VhdxFile child, string childPath, string? parentRoot) =>
        ChainLinks.ResolveParent(child, childPath, parentRoot);

    /// <inheritdoc/>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, buffer.Length);
        return ReadResolvedAsync(offset, buffer, ct);
    }

    /// <inheritdoc/>
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, bool forceUnitAccess = false, CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, data.Length);
        BlockDeviceGuard.CheckWritable(this, Top.Path);
        await Top.WriteAsync(offset, data, ct).ConfigureAwait(false);
        if (forceUnitAccess)
        {
            await Top.CommitAsync(ct).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken ct = default) => Top.CommitAsync(ct);

    /// <inheritdoc/>
    public ValueTask TrimAsync(long offset, long length, CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, length);
        BlockDeviceGuard.CheckWritable(this, Top.Path);
        return Top.ZeroAsync(offset, length, trim: true, ct);
    }

    /// <inheritdoc/>
    public ValueTask WriteZeroesAsync(long offset, long length, CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, length);
        BlockDeviceGuard.CheckWritable(this, Top.Path);
        return Top.ZeroAsync(offset, length, trim: false, ct);
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<Extent> MapAsync(long offset, long length, [EnumeratorCancellation] CancellationToken ct = default)
    {
        Extent? pending = null;
        await foreach (ChainExtent extent in MapChainAsync(offset, length, ct).ConfigureAwait(false))
        {
            if (pending is { } p && p.Kind == extent.Kind)
            {
                pending = p with { Length = p.Length + extent.Length };
                continue;
            }

            if (pending is { } done)
            {
                yield return done;
            }

            pending = new Extent(extent.Offset, extent.Length, extent.Kind);
        }

        if (pending is { } last)
        {
            yield return last;
        }
    }

    /// <summary>Like <see cref="MapAsync"/>, and says which file of the chain (index into <see cref="Files"/>)
    /// decides each extent: the file holding the data, or the one whose ZERO state hides its parents; -1 when
    /// no file has anything there.</summary>
    public async IAsyncEnumerable<ChainExtent> MapChainAsync(long offset, long length, [EnumeratorCancellation] CancellationToken ct = default)
    {
        BlockDeviceGuard.CheckRange(this, offset, length);
        var output = new List<ChainExtent>();
        Resolve(offset, length, output);
        foreach (ChainExtent extent in output)
        {
            ct.ThrowIfCancellationRequested();
            yield return extent;
        }

        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        List<Exception>? errors = null;
        try
        {
            await _top.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or BlockDriverException)
        {
            errors = [e];
        }

        if (_ownsChain && _chain is not null)
        {
            try
            {
                await _chain.DisposeAsync().ConfigureAwait(false);
            }
            catch (AggregateException e)
            {
                (errors ??= []).AddRange(e.InnerExceptions);
            }
        }

        if (errors is not null)
        {
            throw new AggregateException("Closing the VHDX chain failed.", errors);
        }
    }

    // Refuses a top file that cannot be a child of the shared chain: no parent, already in the chain, a chain too
    // deep, a locator naming another file, or a broken link.
    private static void CheckSharedParent(VhdxFile top, string path, string fullPath, VhdxChain parent, VhdxOpenOptions options)
    {
        if (!top.HasParent)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"{path} has no parent; it cannot be opened over the chain of {parent.Top.Path}.");
        }

        if (parent.Contains(ChainLinks.CanonicalPath(fullPath)))
        {
            throw new BlockDriverException(ErrorKind.Corrupt, $"{fullPath} is already in the chain of {parent.Top.Path} (a loop).");
        }

        if (1 + parent.Files.Count > options.MaxChainDepth)
        {
            throw new BlockDriverException(ErrorKind.Corrupt, $"{path}: the chain is deeper than {options.MaxChainDepth} files.");
        }

        string parentPath = ChainLinks.ResolveParent(top, fullPath, options.ParentRoot);
        string expected = ChainLinks.CanonicalPath(parent.Top.Path);
        if (ChainLinks.CanonicalPath(parentPath) != expected)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"{fullPath}: its parent is {parentPath}, not the shared chain's top {expected}.");
        }

        ChainLinks.CheckLink(top, fullPath, parent.Top, parent.Top.Path);
    }

    // Swaps the validated read-only top for a writable open of the same file, and checks the link again: the
    // file could have been replaced in between.
    private static VhdxFile ReopenWritable(VhdxFile readOnlyTop, string path, VhdxChain? chain)
    {
        readOnlyTop.DisposeAsync().AsTask().GetAwaiter().GetResult();
        VhdxFile top = VhdxFile.Open(path, readOnly: false);
        if (chain is not null)
        {
            try
            {
                ChainLinks.CheckLink(top, path, chain.Top, chain.Top.Path);
            }
            catch
            {
                top.DisposeAsync().AsTask().GetAwaiter().GetResult();
                throw;
            }
        }

        return top;
    }

    // Resolves the whole request in memory (the top file's BAT and bitmaps, then the chain's index for what the top
    // leaves to its parent; no awaits), then reads each data extent from the file that holds it.
    private ValueTask ReadResolvedAsync(long offset, Memory<byte> buffer, CancellationToken ct)
    {
        List<ChainExtent> extents = ChainReader.Rent();
        Resolve(offset, buffer.Length, extents);
        return ChainReader.ReadAsync(_files, extents, offset, buffer, ct);
    }

    private void Resolve(long offset, long length, List<ChainExtent> output)
    {
        // The walk is synchronous, so the thread's scratch list is never in use twice at once.
        List<BlockRun> runs = _scratch ??= [];
        runs.Clear();
        _top.Resolve(offset, length, runs);
        foreach (BlockRun run in runs)
        {
            switch (run.Kind)
            {
                case RunKind.Present:
                    ChainIndex.Append(output, new ChainExtent(run.Offset, run.Length, ExtentKind.Data, 0, run.FileOffset));
                    break;
                case RunKind.Zero:
                    ChainIndex.Append(output, new ChainExtent(run.Offset, run.Length, ExtentKind.Zero, 0, -1));
                    break;
                case RunKind.Parent when _chain is not null:
                    _chain.ResolveUnchecked(run.Offset, run.Length, 1, output);
                    break;
                default:
                    ChainIndex.Append(output, new ChainExtent(run.Offset, run.Length, ExtentKind.Hole, -1, -1));
                    break;
            }
        }
    }
}
