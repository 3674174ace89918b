using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Mount.Tar;

namespace BlockDriver.Mount;

/// <summary>
/// Layer tars (Docker/OCI layer format) on mounted layers: apply one to a writable layer, produce the tar of a layer's
/// differences from its parent, list those differences and their size. Each helper mounts what it needs in temporary
/// directories under STORE/mnt/.tmp-* (the layer, and its parent read-only; a layer without a parent, the base file
/// system layer, is compared with an empty tree), runs the Tar/ code and unmounts. A layer the mounter has mounted
/// already is used where it is (a running container's changes), and so is its parent.
/// </summary>
public static class LayerContent
{
    private const string TemporaryPrefix = ".tmp-";

    /// <summary>Applies layer tar <paramref name="tar"/> (whiteouts honoured) to writable layer
    /// <paramref name="layerId"/> and returns the bytes of file content written (see
    /// <see cref="LayerTarApplier.ApplyAsync"/>).</summary>
    /// <exception cref="BlockDriverException">ReadOnly when the layer is sealed or mounted read-only; the errors of
    /// <see cref="LayerMounter.MountAsync(string, string, bool, CancellationToken)"/> and of the tar applier (InvalidArgument for a hostile tar).</exception>
    public static async Task<long> ApplyTarAsync(LayerMounter mounter, string layerId, Stream tar, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(mounter);
        ArgumentNullException.ThrowIfNull(layerId);
        ArgumentNullException.ThrowIfNull(tar);
        Layer layer = mounter.Store.Get(layerId);
        if (layer.IsSealed)
        {
            throw new BlockDriverException(ErrorKind.ReadOnly, $"layer {layerId} is sealed; a tar can only be applied to a writable layer.");
        }

        var mounted = new List<string>();
        Exception? failure = null;
        try
        {
            string root = await UseOrMountAsync(mounter, layer.Id, readOnly: false, mounted, ct).ConfigureAwait(false);
            return await LayerTarApplier.ApplyAsync(tar, root, ct).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            failure = ex;
            throw;
        }
        finally
        {
            await UnmountAllAsync(mounter, mounted, failure).ConfigureAwait(false);
        }
    }

    /// <summary>What layer <paramref name="layerId"/> changed relative to its parent: added, modified and deleted
    /// paths, parents before children (<see cref="LayerChanges.Compute"/>).</summary>
    public static async Task<IReadOnlyList<LayerChange>> ChangesAsync(LayerMounter mounter, string layerId, CancellationToken ct = default)
    {
        await using LayerComparison comparison = await LayerComparison.OpenAsync(mounter, layerId, ParentOf(mounter, layerId), ct).ConfigureAwait(false);
        return comparison.Changes();
    }

    /// <summary>Bytes of regular-file content that layer <paramref name="layerId"/> added or modified relative to its
    /// parent: Docker's DiffSize.</summary>
    public static async Task<long> DiffSizeAsync(LayerMounter mounter, string layerId, CancellationToken ct = default)
    {
        await using LayerComparison comparison = await LayerComparison.OpenAsync(mounter, layerId, ParentOf(mounter, layerId), ct).ConfigureAwait(false);
        return comparison.DiffSize();
    }

    /// <summary>Writes the layer tar of <paramref name="layerId"/>'s differences from its parent (deletions as
    /// whiteouts) to <paramref name="output"/> and returns the changes it holds.</summary>
    public static async Task<IReadOnlyList<LayerChange>> DiffAsync(LayerMounter mounter, string layerId, Stream output, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(output);
        await using LayerComparison comparison = await LayerComparison.OpenAsync(mounter, layerId, ParentOf(mounter, layerId), ct).ConfigureAwait(false);
        return await comparison.WriteDiffAsync(output, ct).ConfigureAwait(false);
    }

    private static string? ParentOf(LayerMounter mounter, string layerId)
    {
        ArgumentNullException.ThrowIfNull(mounter);
        ArgumentNullException.ThrowIfNull(layerId);
        return mounter.Store.Get(layerId).Parent;
    }

    // The layer's mount, shared (one more reference) when the mounter has it mounted already (a running container's
    // layer, or a parent another operation is reading), else a new one in a temporary directory.
    internal static async Task<string> UseOrMountAsync(LayerMounter mounter, string layerId, bool readOnly, List<string> mounted, CancellationToken ct)
    {
        string directory = Path.Combine(mounter.Store.Paths.Mounts, TemporaryPrefix + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        MountInfo mount;
        try
        {
            mount = await mounter.MountOrShareAsync(layerId, directory, readOnly, ct).ConfigureAwait(false);
        }
        finally
        {
            DeleteUnlessMounted(mounter, directory);
        }

        mounted.Add(mount.Directory);
        return mount.Directory;
    }

    // An empty temporary directory with nothing mounted on it goes; a mount point, or a directory the caller made, stays.
    private static void DeleteUnlessMounted(LayerMounter mounter, string directory)
    {
        if (Path.GetFileName(directory).StartsWith(TemporaryPrefix, StringComparison.Ordinal)
            && !mounter.List().Any(m => m.Directory == directory))
        {
            try
            {
                Directory.Delete(directory);
            }
            catch (DirectoryNotFoundException)
            {
                // Another operation that shared this mount went last and removed the directory first.
            }
        }
    }

    internal static async Task UnmountAllAsync(LayerMounter mounter, List<string> mounted, Exception? failure)
    {
        var failures = new List<Exception>();
        for (int i = mounted.Count - 1; i >= 0; i--)
        {
            try
            {
                await mounter.UnmountAsync(mounted[i], CancellationToken.None).ConfigureAwait(false);
                DeleteUnlessMounted(mounter, mounted[i]);
            }
            catch (Exception ex)
            {
                failures.Add(ex);
            }
        }

        if (failures.Count > 0)
        {
            if (failure is not null)
            {
                failures.Insert(0, failure);
            }

            throw new AggregateException("unmounting the temporary mounts of a layer content operation failed.", failures);
        }
    }
}
