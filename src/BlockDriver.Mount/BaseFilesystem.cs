using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Interop;

namespace BlockDriver.Mount;

/// <summary>
/// The store's one empty file system layer: a sealed, parentless image layer with id <see cref="LayerId"/> (and label
/// <c>blockdriver.base=ext4</c>) holding a freshly made ext4. Every parentless image layer is created as its child,
/// so no image pays for mkfs and every layer of the store is mountable. A store may keep more than one, one per
/// capacity (<see cref="LayerIdFor"/>: the CLI's <c>layer create --size</c>), each made the same way.
/// </summary>
/// <remarks>
/// <para>Made once per store (per id) by <see cref="EnsureAsync(LayerStore, LayerMounter, string, long, CancellationToken)"/>: a blank layer is attached (FUSE file + loop device) and
/// <c>mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0,discard</c> runs on it, and debugfs removes the
/// <c>lost+found</c> mkfs makes, so that the file system is empty, as a layer with no parent must be. discard makes mkfs punch
/// the whole device first, so the layer holds only what mkfs writes; no lazy initialisation means the kernel never
/// writes inode tables or the journal later, from under a container (which would copy them into every container
/// layer).</para>
/// <para>Concurrent callers, in this process or others, make one: creation holds an OFD lock (FileLock) on
/// STORE/run/base-fs.lock. A writable layer with the id (a creation that died before sealing) is removed and made
/// again.</para>
/// </remarks>
public static class BaseFilesystem
{
    /// <summary>The id of the base file system layer.</summary>
    public const string LayerId = "base-fs-ext4";

    /// <summary>The label that marks the base file system layer, and its value.</summary>
    public static readonly KeyValuePair<string, string> Label = new("blockdriver.base", "ext4");

    private static readonly TimeSpan LockTimeout = TimeSpan.FromMinutes(5);

    /// <summary>The id of the base file system layer of <paramref name="capacity"/> bytes, for stores that keep one
    /// per capacity (the CLI's <c>layer create --size</c>): <see cref="LayerId"/> for
    /// <see cref="LayerSpec.DefaultCapacity"/>, else <c>base-fs-ext4-</c> and the capacity with the largest binary
    /// unit that divides it exactly (<c>base-fs-ext4-64M</c>, <c>base-fs-ext4-1G</c>, <c>base-fs-ext4-1536K</c>),
    /// or in bytes.</summary>
    public static string LayerIdFor(long capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        if (capacity == LayerSpec.DefaultCapacity)
        {
            return LayerId;
        }

        string size = capacity switch
        {
            _ when capacity % (1L << 40) == 0 => $"{capacity >> 40}T",
            _ when capacity % (1L << 30) == 0 => $"{capacity >> 30}G",
            _ when capacity % (1L << 20) == 0 => $"{capacity >> 20}M",
            _ when capacity % (1L << 10) == 0 => $"{capacity >> 10}K",
            _ => capacity.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        return $"{LayerId}-{size}";
    }

    /// <summary>The store's sealed base file system layer, made now if there is none.</summary>
    /// <param name="store">The store.</param>
    /// <param name="mounter">The store's mounter, used to attach the new layer for mkfs.</param>
    /// <param name="capacity">The virtual size in bytes of the layer if it is made now, and so of every layer over it
    /// (<see cref="LayerSpec.DefaultCapacity"/> is 10 GiB).</param>
    /// <param name="ct">Cancels the wait for another creator, and mkfs.</param>
    /// <exception cref="BlockDriverException">InvalidArgument when the existing base layer has another capacity or is
    /// not what this class makes; Unavailable when mkfs.ext4 fails or is missing; InUse when another process holds
    /// the creation lock for more than 5 minutes.</exception>
    public static Task<Layer> EnsureAsync(LayerStore store, LayerMounter mounter, long capacity = LayerSpec.DefaultCapacity, CancellationToken ct = default) =>
        EnsureAsync(store, mounter, LayerId, capacity, ct);

    /// <summary>The sealed base file system layer <paramref name="layerId"/> (one of several a store may keep, e.g.
    /// <see cref="LayerIdFor"/> of a capacity), made now if there is none; otherwise as
    /// <see cref="EnsureAsync(LayerStore, LayerMounter, long, CancellationToken)"/>.</summary>
    /// <param name="store">The store.</param>
    /// <param name="mounter">The store's mounter, used to attach the new layer for mkfs.</param>
    /// <param name="layerId">The id of the base layer.</param>
    /// <param name="capacity">The virtual size in bytes of the layer if it is made now.</param>
    /// <param name="ct">Cancels the wait for another creator, and mkfs.</param>
    public static async Task<Layer> EnsureAsync(LayerStore store, LayerMounter mounter, string layerId, long capacity, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(mounter);
        ArgumentNullException.ThrowIfNull(layerId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        if (!ReferenceEquals(mounter.Store, store))
        {
            throw new ArgumentException("The mounter belongs to another store.", nameof(mounter));
        }

        if (Existing(store, layerId, capacity) is Layer ready)
        {
            return ready;
        }

        Directory.CreateDirectory(store.Paths.Run);
        using FileLock held = await AcquireLockAsync(Path.Combine(store.Paths.Run, "base-fs.lock"), LockTimeout, ct).ConfigureAwait(false);
        if (Existing(store, layerId, capacity) is Layer made)
        {
            return made;
        }

        if (store.Find(layerId) is { IsSealed: false })
        {
            // A creation that died between create and seal (we hold the lock, so nobody is making it now).
            await store.RemoveAsync(layerId, ct).ConfigureAwait(false);
        }

        await store.CreateAsync(new LayerSpec
        {
            Id = layerId,
            Kind = LayerKind.Image,
            Capacity = capacity,
            Labels = new Dictionary<string, string> { [Label.Key] = Label.Value },
        }, ct).ConfigureAwait(false);
        try
        {
            LayerAttachment attachment = await mounter.AttachAsync(layerId, writable: true, ct).ConfigureAwait(false);
            try
            {
                await ExternalTool.RunAsync("mkfs.ext4",
                    ["-q", "-F", "-L", "blockdriver", "-E", "lazy_itable_init=0,lazy_journal_init=0,discard", attachment.Loop.Path], ct).ConfigureAwait(false);
                await RemoveLostFoundAsync(attachment.Loop.Path, ct).ConfigureAwait(false);
            }
            finally
            {
                await attachment.ReleaseAsync().ConfigureAwait(false);
            }

            return await store.SealAsync(layerId, ct: ct).ConfigureAwait(false);
        }
        catch (Exception failure)
        {
            await RemoveAfterFailureAsync(store, layerId, failure).ConfigureAwait(false);
            throw;
        }
    }

    // mkfs.ext4 always makes /lost+found (there is no option against it), but an image layer or a containerd snapshot
    // with no parent must be empty, as overlay2's lowest layer and containerd's devmapper snapshotter (which removes it
    // in Prepare) are. debugfs unlinks it offline, freeing its inode and blocks (a parentless layer's child then stores
    // nothing of it). e2fsck -fn reads the result clean: e2fsck 1.47 asks for /lost+found only when it has an orphan
    // to reconnect, and makes it then. debugfs exits 0 even when a request fails, so the result is checked with a
    // second, read-only debugfs.
    private static async Task RemoveLostFoundAsync(string device, CancellationToken ct)
    {
        await ExternalTool.RunAsync("debugfs", ["-w", "-R", "rmdir /lost+found", device], ct).ConfigureAwait(false);
        string listing = await ExternalTool.RunAsync("debugfs", ["-R", "ls -p /", device], ct).ConfigureAwait(false);
        if (listing.Contains("/lost+found/", StringComparison.Ordinal))
        {
            throw new BlockDriverException(ErrorKind.Unavailable, $"debugfs could not remove lost+found from the new file system on {device}: {listing}");
        }
    }

    // A failed creation (no loop or FUSE support, mkfs refusing the size) leaves no half-made layer behind. The next
    // EnsureAsync would remove it too, but until then it would be listed, and a failed command changes nothing.
    private static async Task RemoveAfterFailureAsync(LayerStore store, string layerId, Exception failure)
    {
        try
        {
            await store.RemoveAsync(layerId, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception cleanup)
        {
            throw new AggregateException($"making base file system layer {layerId} failed, and so did removing it.", failure, cleanup);
        }
    }

    private static Layer? Existing(LayerStore store, string layerId, long capacity)
    {
        if (store.Find(layerId) is not { IsSealed: true } layer)
        {
            return null;
        }

        if (layer.Parent is not null || !layer.Labels.TryGetValue(Label.Key, out string? value) || value != Label.Value)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"layer {layerId} in {store.Root} is not a base file system layer made by BlockDriver (it has a parent or lacks the label {Label.Key}={Label.Value}).");
        }

        if (layer.Capacity != capacity)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"the base file system layer {layerId} of {store.Root} has a capacity of {layer.Capacity} bytes, not the {capacity} asked for.");
        }

        return layer;
    }

    // An OFD lock (FileLock) on a lock file: one holder at a time across processes, and across open file descriptions
    // within one; polled until the deadline.
    private static async Task<FileLock> AcquireLockAsync(string path, TimeSpan timeout, CancellationToken ct)
    {
        FileLock held;
        try
        {
            held = FileLock.Open(path);
        }
        catch (IOException ex)
        {
            throw new BlockDriverException(ErrorKind.Unavailable, ex.Message, ex);
        }

        try
        {
            (bool taken, LockHolder? holder) = await held.TryLockAsync(exclusive: true, timeout, ct).ConfigureAwait(false);
            if (!taken)
            {
                throw new BlockDriverException(ErrorKind.InUse,
                    $"{path} stayed locked for {timeout.TotalSeconds:0} s: another process ({holder?.ToString() ?? "pid unknown"}) is making the base file system layer.");
            }

            return held;
        }
        catch
        {
            held.Dispose();
            throw;
        }
    }
}
