using System.Runtime.CompilerServices;
using BlockDriver.Abstractions;

namespace BlockDriver.Vhdx;

/// <summary>A virtual disk: a VHDX file and, for a differencing file, its chain of parents, as one
/// <see cref="IBlockDevice"/>. Reads resolve through the chain by runs of sectors (a run the top file does not hold
/// is asked of the parent as one request); writes, trims and zeroes go to the top file only.</summary>
/// <remarks>
/// <para>Opening validates every link: the parent must exist (found by relative path, then absolute path), its
/// current DataWriteGuid must equal the child's <c>parent_linkage</c> (or <c>parent_linkage2</c>), sector size
/// and virtual size must match, and no file may appear twice.</para>
/// <para>Owns all files of the chain; disposing commits the top file and closes everything.</para>
/// </remarks>
public sealed class VhdxDisk : IBlockDevice
{
    [ThreadStatic]
    private static List<List<BlockRun>>? _scratch;

    private readonly VhdxFile[] _files;

    private VhdxDisk(VhdxFile[] files)
    {
        _files = files;
    }

    /// <summary>The chain, top file first, base last.</summary>
    public IReadOnlyList<VhdxFile> Files => _files;

    /// <summary>The top (writable) file.</summary>
    public VhdxFile Top => _files[0];

    /// <inheritdoc/>
    public long Length => Top.VirtualSize;

    /// <inheritdoc/>
    public int SectorSize => Top.LogicalSectorSize;

    /// <inheritdoc/>
    public bool IsReadOnly => Top.IsReadOnly;

    /// <summary>Opens <paramref name="path"/> and its parents.</summary>
    /// <exception cref="BlockDriverException">NotFound for a missing file or parent; Corrupt for a malformed file,
    /// a broken link (parent changed), a loop or an escaping parent path.</exception>
    public static VhdxDisk Open(string path, VhdxOpenOptions? options = null)
    {
        options ??= new VhdxOpenOptions();
        var files = new List<VhdxFile>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            // The whole chain is validated with every file read-only; only then is the top reopened for writing,
            // so that refusing a chain never changes a file (a writable open updates the headers at once).
            string current = Path.GetFullPath(path);
            VhdxFile file = VhdxFile.Open(path, readOnly: true);
            files.Add(file);
            seen.Add(CanonicalPath(current));
            while (file.HasParent)
            {
                if (files.Count >= options.MaxChainDepth)
                {
                    throw new BlockDriverException(ErrorKind.Corrupt, $"{path}: the chain is deeper than {options.MaxChainDepth} files.");
                }

                string parentPath = ResolveParent(file, current, options.ParentRoot);
                if (!seen.Add(CanonicalPath(parentPath)))
                {
                    throw new BlockDriverException(ErrorKind.Corrupt, $"{current}: parent {parentPath} is already in the chain (a loop).");
                }

                VhdxFile parent = VhdxFile.Open(parentPath, readOnly: true);
                files.Add(parent);
                CheckLink(file, current, parent, parentPath);
                file = parent;
                current = parentPath;
            }

            if (!options.ReadOnly)
            {
                files[0].DisposeAsync().AsTask().GetAwaiter().GetResult();
                files[0] = VhdxFile.Open(path, readOnly: false);
                if (files.Count > 1)
                {
                    CheckLink(files[0], path, files[1], files[1].Path);
                }
            }

            return new VhdxDisk([.. files]);
        }
        catch
        {
            foreach (VhdxFile file in files)
            {
                file.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }

            throw;
        }
    }

    /// <summary>Finds the file a differencing file's locator names, trying relative_path, volume_path and
    /// absolute_win32_path in the spec's order.</summary>
    /// <exception cref="BlockDriverException">NotFound when no candidate exists; Corrupt when the path found lies
    /// outside <paramref name="parentRoot"/>.</exception>
    public static string ResolveParent(VhdxFile child, string childPath, string? parentRoot)
    {
        ParentLocator locator = child.ParentLocator ?? throw new InvalidOperationException($"{childPath} has no parent.");
        string directory = Path.GetDirectoryName(Path.GetFullPath(childPath))!;
        var tried = new List<string>();
        foreach ((string key, string stored) in locator.CandidatePaths())
        {
            string candidate = stored.Replace('\\', '/');
            if (key == ParentLocator.RelativePathKey)
            {
                if (Path.IsPathRooted(candidate))
                {
                    throw new VhdxFormatException(childPath, "parent locator", -1, $"relative_path \"{stored}\" is absolute.");
                }

                candidate = Path.GetFullPath(Path.Combine(directory, candidate));
            }
            else if (!Path.IsPathRooted(candidate))
            {
                tried.Add($"{key}={stored} (not a path on this system)");
                continue;
            }

            candidate = Path.GetFullPath(candidate);
            if (parentRoot is not null)
            {
                string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(parentRoot)) + Path.DirectorySeparatorChar;
                if (!candidate.StartsWith(root, StringComparison.Ordinal))
                {
                    throw new VhdxFormatException(childPath, "parent locator", -1, $"{key} \"{stored}\" escapes {root}.");
                }
            }

            if (File.Exists(candidate))
            {
                return candidate;
            }

            tried.Add($"{key}={stored} ({candidate})");
        }

        throw new BlockDriverException(ErrorKind.NotFound, $"{childPath}: parent not found; tried {string.Join(", ", tried)}.");
    }

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
        MapLevel(0, offset, length, output);
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
        foreach (VhdxFile file in _files)
        {
            try
            {
                await file.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or BlockDriverException)
            {
                (errors ??= []).Add(e);
            }
        }

        if (errors is not null)
        {
            throw new AggregateException("Closing the VHDX chain failed.", errors);
        }
    }

    private static void CheckLink(VhdxFile child, string childPath, VhdxFile parent, string parentPath)
    {
        ParentLocator locator = child.ParentLocator!;
        if (parent.DataWriteGuid != locator.Linkage && parent.DataWriteGuid != locator.Linkage2)
        {
            throw new BlockDriverException(ErrorKind.Corrupt,
                $"{childPath}: parent {parentPath} has changed since the child was made (its DataWriteGuid is {parent.DataWriteGuid:B}, the child's parent_linkage is {locator.Linkage:B}); reading the chain would show wrong data.");
        }

        if (parent.LogicalSectorSize != child.LogicalSectorSize || parent.VirtualSize != child.VirtualSize)
        {
            throw new BlockDriverException(ErrorKind.Corrupt,
                $"{childPath}: parent {parentPath} has {parent.VirtualSize} bytes in {parent.LogicalSectorSize}-byte sectors, the child {child.VirtualSize} in {child.LogicalSectorSize}-byte sectors.");
        }
    }

    private static string CanonicalPath(string path)
    {
        string full = Path.GetFullPath(path);
        FileSystemInfo? target = File.ResolveLinkTarget(full, returnFinalTarget: true);
        return target?.FullName ?? full;
    }

    // Resolves the whole request through the chain first (in memory: BAT and bitmap lookups, no awaits), then
    // reads each data extent from the file that holds it. One pass, one list, whatever the chain depth.
    private async ValueTask ReadResolvedAsync(long offset, Memory<byte> buffer, CancellationToken ct)
    {
        var extents = new List<ChainExtent>();
        MapLevel(0, offset, buffer.Length, extents);
        foreach (ChainExtent extent in extents)
        {
            Memory<byte> slice = buffer.Slice((int)(extent.Offset - offset), (int)extent.Length);
            if (extent.Kind == ExtentKind.Data)
            {
                await _files[extent.Layer].ReadDataAsync(extent.FileOffset, slice, ct).ConfigureAwait(false);
            }
            else
            {
                slice.Span.Clear();
            }
        }
    }

    private void MapLevel(int level, long offset, long length, List<ChainExtent> output)
    {
        // Scratch lists per chain level, reused by every request on this thread: the walk is synchronous, so a
        // level's list is never in use twice at once.
        _scratch ??= [];
        while (_scratch.Count <= level)
        {
            _scratch.Add(new List<BlockRun>());
        }

        List<BlockRun> runs = _scratch[level];
        runs.Clear();
        _files[level].Resolve(offset, length, runs);
        foreach (BlockRun run in runs)
        {
            switch (run.Kind)
            {
                case RunKind.Present:
                    Add(output, new ChainExtent(run.Offset, run.Length, ExtentKind.Data, level, run.FileOffset));
                    break;
                case RunKind.Zero:
                    Add(output, new ChainExtent(run.Offset, run.Length, ExtentKind.Zero, level, -1));
                    break;
                case RunKind.Parent when level + 1 < _files.Length:
                    MapLevel(level + 1, run.Offset, run.Length, output);
                    break;
                default:
                    Add(output, new ChainExtent(run.Offset, run.Length, ExtentKind.Hole, -1, -1));
                    break;
            }
        }
    }

    private static void Add(List<ChainExtent> output, ChainExtent extent)
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
}
