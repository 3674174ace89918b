using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Mount.Tar;

namespace BlockDriver.Mount;

/// <summary>
/// Layer tars (Docker/OCI layer format) on mounted layers: apply one to a writable layer, produce the tar of a layer's
/// differences from its parent, list those differences and their size. Each helper mounts what it needs in temporary
/// directories under STORE/mnt/.tmp-* (the layer, and its parent read-only; a layer without a parent, the base file
/// system layer, is compared with an empty tree), runs the Tar/ code and unmounts. A comparison uses a layer the
/// mounter has mounted already where it is (a running container's changes), and so its parent; an apply never does:
/// it refuses a layer mounted by anyone else.
/// </summary>
public static class LayerContent
{
    private const string TemporaryPrefix = ".tmp-";

    /// <summary>Applies layer tar <paramref name="tar"/> (whiteouts honoured) to writable layer
    /// <paramref name="layerId"/> and returns the bytes of file content written (see
    /// <see cref="LayerTarApplier.ApplyAsync"/>).</summary>
    /// <remarks>The layer is mounted for the apply alone, in a temporary directory only root can reach: a layer that
    /// is mounted already (a running container's root file system, an admin's mount) is refused, because a process
    /// on that mount could swap what the applier is writing for links that lead out of the layer while it writes,
    /// and because a running container must not see a tar land under it.</remarks>
    /// <exception cref="BlockDriverException">ReadOnly when the layer is sealed; InUse when it is mounted (or being
    /// applied) by someone else; the errors of <see cref="LayerMounter.MountAsync(string, string, bool, CancellationToken)"/>
    /// and of the tar applier (InvalidArgument for a hostile tar).</exception>
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
            string root = await MountAloneAsync(mounter, layer.Id, mounted, ct).ConfigureAwait(false);
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

    // A mount of the layer of its own in a temporary directory, refused (InUse) when the layer is mounted elsewhere.
    private static async Task<string> MountAloneAsync(LayerMounter mounter, string layerId, List<string> mounted, CancellationToken ct)
    {
        if (mounter.Find(layerId) is MountInfo other)
        {
            throw new BlockDriverException(ErrorKind.InUse,
                $"layer {layerId} is mounted at {other.Directory} ({other.References} reference(s): a running container, an admin's mount or another apply); a tar is applied only to a layer nobody has mounted.");
        }

        string directory = Path.Combine(mounter.Store.Paths.Mounts, TemporaryPrefix + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            // Not shared: should another caller mount the layer between the check above and here, this fails InUse.
            MountInfo mount = await mounter.MountAsync(layerId, directory, readOnly: false, ct).ConfigureAwait(false);
            mounted.Add(mount.Directory);
            return mount.Directory;
        }
        finally
        {
            DeleteUnlessMounted(mounter, directory);
        }
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
