using System.Diagnostics;
using System.Runtime.InteropServices;
using BlockDriver.Abstractions;
using BlockDriver.Core;

namespace BlockDriver.Mount;

/// <summary>
/// The store's one empty file system layer: a sealed, parentless image layer with id <see cref="LayerId"/> (and label
/// <c>blockdriver.base=ext4</c>) holding a freshly made ext4. Every parentless image layer is created as its child,
/// so no image pays for mkfs and every layer of the store is mountable.
/// </summary>
/// <remarks>
/// <para>Made once per store by <see cref="EnsureAsync"/>: a blank layer is attached (FUSE file + loop device) and
/// <c>mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0,discard</c> runs on it. discard makes mkfs punch
/// the whole device first, so the layer holds only what mkfs writes; no lazy initialisation means the kernel never
/// writes inode tables or the journal later, from under a container (which would copy them into every container
/// layer).</para>
/// <para>Concurrent callers, in this process or others, make one: creation holds an flock on
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

    /// <summary>The store's sealed base file system layer, made now if there is none.</summary>
    /// <param name="store">The store.</param>
    /// <param name="mounter">The store's mounter, used to attach the new layer for mkfs.</param>
    /// <param name="capacity">The virtual size in bytes of the layer if it is made now, and so of every layer over it
    /// (<see cref="LayerSpec.DefaultCapacity"/> is 10 GiB).</param>
    /// <param name="ct">Cancels the wait for another creator, and mkfs.</param>
    /// <exception cref="BlockDriverException">InvalidArgument when the existing base layer has another capacity or is
    /// not what this class makes; Unavailable when mkfs.ext4 fails or is missing; InUse when another process holds
    /// the creation lock for more than 5 minutes.</exception>
    public static async Task<Layer> EnsureAsync(LayerStore store, LayerMounter mounter, long capacity = LayerSpec.DefaultCapacity, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(mounter);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        if (!ReferenceEquals(mounter.Store, store))
        {
            throw new ArgumentException("The mounter belongs to another store.", nameof(mounter));
        }

        if (Existing(store, capacity) is Layer ready)
        {
            return ready;
        }

        Directory.CreateDirectory(store.Paths.Run);
        using FileLock held = await FileLock.AcquireAsync(Path.Combine(store.Paths.Run, "base-fs.lock"), LockTimeout, ct).ConfigureAwait(false);
        if (Existing(store, capacity) is Layer made)
        {
            return made;
        }

        if (store.Find(LayerId) is { IsSealed: false })
        {
            // A creation that died between create and seal (we hold the lock, so nobody is making it now).
            await store.RemoveAsync(LayerId, ct).ConfigureAwait(false);
        }

        await store.CreateAsync(new LayerSpec
        {
            Id = LayerId,
            Kind = LayerKind.Image,
            Capacity = capacity,
            Labels = new Dictionary<string, string> { [Label.Key] = Label.Value },
        }, ct).ConfigureAwait(false);
        LayerAttachment attachment = await mounter.AttachAsync(LayerId, writable: true, ct).ConfigureAwait(false);
        try
        {
            await ExternalTool.RunAsync("mkfs.ext4",
                ["-q", "-F", "-L", "blockdriver", "-E", "lazy_itable_init=0,lazy_journal_init=0,discard", attachment.Loop.Path], ct).ConfigureAwait(false);
        }
        finally
        {
            await attachment.ReleaseAsync().ConfigureAwait(false);
        }

        return await store.SealAsync(LayerId, ct: ct).ConfigureAwait(false);
    }

    private static Layer? Existing(LayerStore store, long capacity)
    {
        if (store.Find(LayerId) is not { IsSealed: true } layer)
        {
            return null;
        }

        if (layer.Parent is not null || !layer.Labels.TryGetValue(Label.Key, out string? value) || value != Label.Value)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"layer {LayerId} in {store.Root} is not a base file system layer made by BlockDriver (it has a parent or lacks the label {Label.Key}={Label.Value}).");
        }

        if (layer.Capacity != capacity)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"the base file system layer of {store.Root} has a capacity of {layer.Capacity} bytes, not the {capacity} asked for.");
        }

        return layer;
    }

    // flock(2) on a lock file: one holder at a time across processes, and across open file descriptions within one.
    // A raw fd, not a FileStream: .NET takes a shared flock of its own on files it opens, and two openers each holding
    // that shared lock could never upgrade.
    private sealed class FileLock : IDisposable
    {
        private int _fd;

        private FileLock(int fd) => _fd = fd;

        public static async Task<FileLock> AcquireAsync(string path, TimeSpan timeout, CancellationToken ct)
        {
            const int OCreat = 0x40;
            int fd = LoopNative.Open(path, LoopNative.ORdWr | LoopNative.OCloExec | OCreat, 0b110_000_000);
            if (fd < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new BlockDriverException(ErrorKind.Unavailable, $"opening {path} failed: {MountNative.Describe(errno)}.");
            }

            try
            {
                var clock = Stopwatch.StartNew();
                while (MountNative.Flock(fd, MountNative.LockEx | MountNative.LockNb) != 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno is not (MountNative.EWOULDBLOCK or MountNative.EINTR))
                    {
                        throw new BlockDriverException(ErrorKind.Unavailable, $"locking {path} failed: {MountNative.Describe(errno)}.");
                    }

                    if (clock.Elapsed > timeout)
                    {
                        throw new BlockDriverException(ErrorKind.InUse, $"{path} stayed locked for {timeout.TotalSeconds:0} s: another process is making the base file system layer.");
                    }

                    await Task.Delay(50, ct).ConfigureAwait(false);
                }

                return new FileLock(fd);
            }
            catch
            {
                LoopNative.Close(fd);
                throw;
            }
        }

        // Closing the fd releases the lock.
        public void Dispose()
        {
            int fd = Interlocked.Exchange(ref _fd, -1);
            if (fd >= 0)
            {
                LoopNative.Close(fd);
            }
        }
    }
}
