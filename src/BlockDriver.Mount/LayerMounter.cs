using System.Runtime.InteropServices;
using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Fuse;

namespace BlockDriver.Mount;

/// <summary>
/// Mounts layers of one store as ext4 directories: the layer's chain is served as a file of one FUSE mount at
/// STORE/run/fuse (named after the layer id), a loop device (direct I/O, 4096-byte blocks, autoclear) turns the file
/// into a block device, and the file system on it is mounted at the requested directory: read-write with
/// <c>discard</c> (so deleting files and fstrim free the layer's storage) for writable layers, <c>ro,noload</c>
/// (read-only, no journal replay, so not one byte is written) for sealed layers or when asked.
/// </summary>
/// <remarks>
/// <para>One per store and process: the FUSE mount is created on first use (a stale one a dead process left is
/// cleaned, with the loop devices and mounts still on its files); a live one of another process makes the first
/// mount fail with InUse.</para>
/// <para>Mounts are reference-counted per directory, as Docker's graphdriver Get/Put need: mounting the same layer at
/// the same directory again only counts, and the file system goes away when every mount was matched by an
/// unmount. A layer is mounted at one directory at a time.</para>
/// <para>Errors (<see cref="BlockDriverException"/>): NotFound (unknown layer, nothing mounted at a directory),
/// InUse (the layer is mounted elsewhere or open by someone else, the directory is already a mount point, the file
/// system is busy at unmount), ReadOnly (a read-write mount of a sealed layer), InvalidArgument (the layer holds
/// no ext4 file system), Unavailable (no loop or FUSE support, mount(2) refused, an I/O error while flushing).</para>
/// <para>Thread-safe. The mounter's gate guards its tables only and is never held across a kernel call (mount,
/// umount, syncfs, loop attach/detach) that may wait on the FUSE server: a mount or unmount marks its entry as in
/// progress under the gate, does the kernel work outside it, and settles the entry under the gate again, so one slow
/// unmount (a large write-back) does not hold up mounts and unmounts of other layers. An operation that meets an
/// entry in progress for the same directory or layer waits for it to settle and looks again. Lock order: the gate,
/// then the FUSE server's set-up gate, then the store's leases. The caller owns the store; dispose the mounter
/// first.</para>
/// </remarks>
public sealed class LayerMounter : IAsyncDisposable
{
    private static readonly TimeSpan BusyRetry = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan StaleDetachWait = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan HiddenClaimWait = TimeSpan.FromSeconds(5);
    private readonly SemaphoreSlim _gate = new(1, 1);

    // Guards the FUSE server's creation (a kernel mount, and the cleanup of a dead predecessor's devices).
    private readonly SemaphoreSlim _serverGate = new(1, 1);
    private readonly List<Entry> _entries = [];
    private readonly List<LayerAttachment> _devices = [];
    private FuseDeviceServer? _server;
    private bool _disposed;

    /// <summary>A mounter for <paramref name="store"/>; nothing is mounted until the first use.</summary>
    public LayerMounter(LayerStore store)
    {
        ArgumentNullException.ThrowIfNull(store);
        Store = store;
        FuseDirectory = Path.Combine(store.Paths.Run, "fuse");
    }

    /// <summary>The store whose layers this mounter mounts.</summary>
    public LayerStore Store { get; }

    /// <summary>Loop devices (<c>/dev/loopN (FILE)</c>) a dead process left on this store's FUSE files that were still
    /// held when <see cref="StartAsync"/> (or the first mount) cleaned them: a container that kept running on the dead
    /// process's mount holds its old file system, and so its device, in its own mount namespace. They are marked for
    /// clearing and unbind when it lets go.</summary>
    public IReadOnlyList<string> HeldStaleDevices { get; private set; } = [];

    /// <summary>Where the FUSE mount of layer files lives: STORE/run/fuse.</summary>
    public string FuseDirectory { get; }

    /// <summary>Mounts the FUSE file system now instead of at the first mount, cleaning first what a dead process
    /// left (a stale FUSE mount at <see cref="FuseDirectory"/>, loop devices on its files and the file systems on
    /// them). A daemon calls it at start, so that nothing a crashed predecessor left survives a restart. Idempotent.</summary>
    /// <exception cref="BlockDriverException">InUse when a live process serves <see cref="FuseDirectory"/>.</exception>
    public async Task StartAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _ = await ServerAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Mounts layer <paramref name="layerId"/> at <paramref name="directory"/> (created if missing), or, if
    /// it is mounted there already in the same mode, counts one more reference.</summary>
    /// <param name="layerId">The layer; it must hold an ext4 file system (a descendant of the base file system
    /// layer, see <see cref="BaseFilesystem"/>).</param>
    /// <param name="directory">The mount point.</param>
    /// <param name="readOnly">Mount read-only even if the layer is writable. Sealed layers are always mounted
    /// read-only.</param>
    /// <param name="ct">Cancels before the mount is made.</param>
    /// <returns>The mount as it is now.</returns>
    public Task<MountInfo> MountAsync(string layerId, string directory, bool readOnly = false, CancellationToken ct = default) =>
        MountCoreAsync(layerId, directory, readOnly, MountPrivileges.None, share: false, ct);

    /// <summary>Mounts as <see cref="MountAsync(string, string, bool, CancellationToken)"/> does, with
    /// <paramref name="privileges"/> (that overload's mounts are <c>nosuid,nodev</c>). Mounting the same layer at
    /// the same directory again with other privileges is refused (InUse).</summary>
    public Task<MountInfo> MountAsync(string layerId, string directory, bool readOnly, MountPrivileges privileges, CancellationToken ct = default) =>
        MountCoreAsync(layerId, directory, readOnly, privileges, share: false, ct);

    /// <summary>Counts one more reference on layer <paramref name="layerId"/>'s mount wherever it is, or mounts it at
    /// <paramref name="directory"/> when it is not mounted; atomic, so two callers that need the same layer for a while
    /// (layer content operations over a shared parent) share one mount and neither unmounts it under the other.
    /// Release with <see cref="UnmountAsync"/> on the returned mount's directory.</summary>
    /// <exception cref="BlockDriverException">ReadOnly when a writable mount is asked for and the layer is mounted
    /// read-only; the errors of <see cref="MountAsync(string, string, bool, CancellationToken)"/>.</exception>
    /// <remarks>A mount it makes is <c>nosuid,nodev</c>; an existing mount is shared whatever its privileges.</remarks>
    public Task<MountInfo> MountOrShareAsync(string layerId, string directory, bool readOnly, CancellationToken ct = default) =>
        MountCoreAsync(layerId, directory, readOnly, MountPrivileges.None, share: true, ct);

    private async Task<MountInfo> MountCoreAsync(string layerId, string directory, bool readOnly, MountPrivileges privileges, bool share, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(layerId);
        string full = NormalizeDirectory(directory);
        while (true)
        {
            Task? busy = null;
            Entry? mine = null;
            bool ro;
            await _gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                Layer layer = Store.Get(layerId);
                ro = readOnly || layer.IsSealed;
                Entry? existing = FindByDirectory(full) ?? _entries.Find(e => e.LayerId == layer.Id);
                if (existing is { Transition: { } transition })
                {
                    busy = transition.Task;
                }
                else if (existing is not null && existing.Directory == full)
                {
                    if (existing.LayerId != layer.Id || existing.ReadOnly != ro || existing.Privileges != privileges)
                    {
                        throw new BlockDriverException(ErrorKind.InUse,
                            $"{full} already has layer {existing.LayerId} mounted {Describe(existing.ReadOnly, existing.Privileges)}.");
                    }

                    existing.References++;
                    return existing.ToInfo();
                }
                else if (existing is not null)
                {
                    if (!share)
                    {
                        throw new BlockDriverException(ErrorKind.InUse, $"layer {layer.Id} is already mounted at {existing.Directory}.");
                    }

                    if (!ro && existing.ReadOnly)
                    {
                        throw new BlockDriverException(ErrorKind.ReadOnly, $"layer {layer.Id} is mounted read-only at {existing.Directory}.");
                    }

                    existing.References++;
                    return existing.ToInfo();
                }

                if (busy is null)
                {
                    Directory.CreateDirectory(full);
                    if (MountInfoEntry.ReadAll().Any(e => e.MountPoint == full))
                    {
                        throw new BlockDriverException(ErrorKind.InUse, $"{full} is already a mount point.");
                    }

                    mine = Entry.Begin(layer.Id, full, ro, privileges, _entries);
                }
            }
            finally
            {
                _gate.Release();
            }

            if (mine is null)
            {
                // Another caller is mounting or unmounting this directory or layer: look again once it settled.
                await busy!.WaitAsync(ct).ConfigureAwait(false);
                continue;
            }

            // Outside the gate: attaching and mounting are kernel calls that go through the FUSE server.
            try
            {
                LayerAttachment attachment = await AttachCoreAsync(mine.LayerId, writable: !ro, ct).ConfigureAwait(false);
                try
                {
                    await KernelCall.RunAsync(() => MountFileSystem(attachment, full, ro, privileges, mine.LayerId), CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    await ReleaseAfterFailureAsync(attachment, ex).ConfigureAwait(false);
                    throw;
                }

                mine.Attachment = attachment;
            }
            catch
            {
                await SettleAsync(mine, keep: false).ConfigureAwait(false);
                throw;
            }

            return (await SettleAsync(mine, keep: true).ConfigureAwait(false)).ToInfo();
        }
    }

    // Ends an entry's mount or unmount: kept (mounted) or removed, and its waiters woken.
    private async Task<Entry> SettleAsync(Entry entry, bool keep)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!keep)
            {
                _entries.Remove(entry);
            }

            entry.EndTransition();
            return entry;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Drops one reference to the mount at <paramref name="directory"/>. At zero: flushes the file system
    /// (syncfs), unmounts it, detaches the loop device, removes the FUSE file and closes the layer, which flushes it.
    /// When a step fails the mount keeps its reference and a later call retries from that step.</summary>
    /// <exception cref="BlockDriverException">NotFound when this mounter has nothing mounted there; InUse when the
    /// file system stays busy (a process has a file open or its working directory there).</exception>
    public async Task UnmountAsync(string directory, CancellationToken ct = default)
    {
        string full = NormalizeDirectory(directory);
        while (true)
        {
            Entry entry;
            Task? busy;
            await _gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                entry = FindByDirectory(full) ?? throw new BlockDriverException(ErrorKind.NotFound, $"no layer is mounted at {full} by this mounter.");
                busy = entry.Transition?.Task;
                if (busy is null)
                {
                    if (entry.References > 1)
                    {
                        entry.References--;
                        return;
                    }

                    entry.BeginTransition();
                }
            }
            finally
            {
                _gate.Release();
            }

            if (busy is not null)
            {
                // Being mounted or unmounted by another caller: look again once it settled.
                await busy.WaitAsync(ct).ConfigureAwait(false);
                continue;
            }

            // Outside the gate: syncfs, umount and the loop detach wait on the FUSE server.
            try
            {
                await TeardownAsync(entry).ConfigureAwait(false);
            }
            catch
            {
                _ = await SettleAsync(entry, keep: true).ConfigureAwait(false);
                throw;
            }

            _ = await SettleAsync(entry, keep: false).ConfigureAwait(false);
            return;
        }
    }

    /// <summary>The mounts, oldest first.</summary>
    public IReadOnlyList<MountInfo> List()
    {
        _gate.Wait();
        try
        {
            return [.. _entries.Where(e => e.Transition is null).Select(e => e.ToInfo())];
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The mount of layer <paramref name="layerId"/>, or null when it is not mounted by this mounter.</summary>
    public MountInfo? Find(string layerId)
    {
        ArgumentNullException.ThrowIfNull(layerId);
        _gate.Wait();
        try
        {
            return _entries.Find(e => e.LayerId == layerId && e.Transition is null)?.ToInfo();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Unmounts everything this mounter mounted, newest first, whatever the reference counts, then
    /// unmounts the FUSE file system. Every step is attempted; failures are thrown together at the end.
    /// Idempotent.</summary>
    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }
        finally
        {
            _gate.Release();
        }

        // Mounts and unmounts in progress end first (new ones are refused from here).
        while (true)
        {
            Task? pending;
            await _gate.WaitAsync().ConfigureAwait(false);
            try
            {
                pending = _entries.Find(e => e.Transition is not null)?.Transition?.Task;
            }
            finally
            {
                _gate.Release();
            }

            if (pending is null)
            {
                break;
            }

            await pending.ConfigureAwait(false);
        }

        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            var failures = new List<Exception>();
            for (int i = _entries.Count - 1; i >= 0; i--)
            {
                try
                {
                    await TeardownAsync(_entries[i]).ConfigureAwait(false);
                    _entries.RemoveAt(i);
                }
                catch (Exception ex)
                {
                    failures.Add(ex);
                }
            }

            for (int i = _devices.Count - 1; i >= 0; i--)
            {
                try
                {
                    await _devices[i].ReleaseAsync().ConfigureAwait(false);
                    _devices.RemoveAt(i);
                }
                catch (Exception ex)
                {
                    failures.Add(ex);
                }
            }

            if (_server is not null && _entries.Count == 0 && _devices.Count == 0)
            {
                // With an entry left, its loop device still holds a file: unmounting the FUSE mount lazily would hide
                // it but keep the server's files busy. Leave the server to its process-exit unmount instead.
                await _server.DisposeAsync().ConfigureAwait(false);
                _server = null;
            }

            if (failures.Count > 0)
            {
                throw new AggregateException($"Unmounting the layers of {Store.Root} failed; still mounted: " +
                    string.Join(", ", _entries.Select(e => $"{e.LayerId} at {e.Directory}")
                        .Concat(_devices.Select(d => $"{d.Name} attached as {d.Loop.Path}"))), failures);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Attaches layer <paramref name="layerId"/> as a loop device and leaves the mounting to the caller (a
    /// containerd snapshotter hands the device to containerd, which mounts it itself). The device stays attached,
    /// and the layer open, until <see cref="DetachDeviceAsync"/> or <see cref="DisposeAsync"/>; a daemon's
    /// <see cref="StartAsync"/> detaches what a dead process left attached.</summary>
    /// <param name="layerId">The layer.</param>
    /// <param name="writable">Attach read-write (the layer must be writable); false attaches read-only, and the kernel
    /// refuses every write to the device.</param>
    /// <param name="ct">Cancels before the device is attached.</param>
    /// <returns>The device path (/dev/loopN).</returns>
    /// <exception cref="BlockDriverException">NotFound (unknown layer), InUse (the layer is mounted or attached by this
    /// mounter already, or open by someone else), ReadOnly (a writable attachment of a sealed layer), Unavailable (no
    /// loop or FUSE support).</exception>
    public async Task<string> AttachDeviceAsync(string layerId, bool writable, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(layerId);
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Layer layer = Store.Get(layerId);
            if (writable && layer.IsSealed)
            {
                throw new BlockDriverException(ErrorKind.ReadOnly, $"layer {layer.Id} is sealed; it can only be attached read-only.");
            }

            if (_entries.Find(e => e.LayerId == layer.Id) is Entry mounted)
            {
                throw new BlockDriverException(ErrorKind.InUse, $"layer {layer.Id} is already mounted at {mounted.Directory}.");
            }

            if (_devices.Find(d => d.Name == layer.Id) is LayerAttachment attached)
            {
                throw new BlockDriverException(ErrorKind.InUse, $"layer {layer.Id} is already attached as {attached.Loop.Path}.");
            }

            LayerAttachment attachment = await AttachCoreAsync(layer.Id, writable, ct, switchable: true).ConfigureAwait(false);
            _devices.Add(attachment);
            return attachment.Loop.Path;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Detaches the loop device <see cref="AttachDeviceAsync"/> made for layer <paramref name="layerId"/>,
    /// removes its FUSE file and closes the layer, which flushes it. Refused while anyone has the device mounted or
    /// open exclusively (checked with an O_EXCL open, which sees mounts in every mount namespace), so a writer's data
    /// is never cut off. When a later step fails the attachment stays listed and a later call retries from there.</summary>
    /// <exception cref="BlockDriverException">NotFound when the layer is not attached by this mounter; InUse when the
    /// device is mounted or held exclusively.</exception>
    public async Task DetachDeviceAsync(string layerId, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(layerId);
        await WaitForHiddenClaimAsync(layerId, BusyRetry, ct).ConfigureAwait(false);
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            LayerAttachment attachment = _devices.Find(d => d.Name == layerId)
                ?? throw new BlockDriverException(ErrorKind.NotFound, $"layer {layerId} is not attached as a device by this mounter.");
            if (attachment.Loop.IsAttached)
            {
                RequireUnclaimed(attachment);
            }

            await attachment.ReleaseAsync().ConfigureAwait(false);
            _devices.Remove(attachment);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The device path of layer <paramref name="layerId"/> as <see cref="AttachDeviceAsync"/> attached it, or
    /// null when it is not attached that way by this mounter.</summary>
    public string? FindDevice(string layerId)
    {
        ArgumentNullException.ThrowIfNull(layerId);
        _gate.Wait();
        try
        {
            return _devices.Find(d => d.Name == layerId)?.Loop.Path;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>True when the device <see cref="AttachDeviceAsync"/> attached for layer <paramref name="layerId"/> is
    /// mounted or held exclusively by anyone, in any mount namespace (an O_EXCL open fails).</summary>
    /// <exception cref="BlockDriverException">NotFound when the layer is not attached by this mounter.</exception>
    public bool IsDeviceClaimed(string layerId)
    {
        ArgumentNullException.ThrowIfNull(layerId);
        _gate.Wait();
        try
        {
            LayerAttachment attachment = _devices.Find(d => d.Name == layerId)
                ?? throw new BlockDriverException(ErrorKind.NotFound, $"layer {layerId} is not attached as a device by this mounter.");
            return IsClaimed(attachment);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Turns what writable layer <paramref name="layerId"/>, attached by <see cref="AttachDeviceAsync"/>, holds
    /// now into sealed layer <paramref name="snapshotId"/> while its device stays attached and mounted: the file
    /// systems mounted on the device are frozen (FIFREEZE: everything written through them is flushed down, and ext4
    /// leaves its journal empty and the image clean), the layer is closed, <see cref="LayerStore.SnapshotAsync"/>
    /// makes its file the sealed snapshot and an empty child of it the layer, which is opened again under the same
    /// loop device, and the file systems are thawed. Writes after this go to the layer, now a child of the snapshot;
    /// the snapshot never changes again.</summary>
    /// <returns>The sealed snapshot layer.</returns>
    /// <exception cref="BlockDriverException">NotFound (not attached by this mounter), ReadOnly (attached read-only),
    /// InUse (the device is claimed but mounted in no mount namespace this process sees, or a file system on it is
    /// frozen already), the errors of <see cref="LayerStore.SnapshotAsync"/> (the layer is then as it was).</exception>
    public async Task<Layer> SnapshotDeviceAsync(string layerId, string snapshotId, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(layerId);
        ArgumentNullException.ThrowIfNull(snapshotId);
        await WaitForHiddenClaimAsync(layerId, HiddenClaimWait, ct).ConfigureAwait(false);
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            LayerAttachment attachment = _devices.Find(d => d.Name == layerId)
                ?? throw new BlockDriverException(ErrorKind.NotFound, $"layer {layerId} is not attached as a device by this mounter.");
            if (attachment.Device is not SwitchableLayerDevice served || served.IsReadOnly)
            {
                throw new BlockDriverException(ErrorKind.ReadOnly, $"layer {layerId} is attached read-only ({attachment.Loop.Path}); only a writable layer can be snapshotted.");
            }

            string device = attachment.Loop.Path;
            List<string> mountPoints = MountPointsOf(device);
            if (mountPoints.Count == 0 && IsClaimed(attachment))
            {
                throw new BlockDriverException(ErrorKind.InUse,
                    $"layer {layerId} ({device}) is mounted or held where this process cannot see it (another mount namespace); unmount it first.");
            }

            // One superblock per block device: freezing it through any of its mount points freezes them all.
            int frozen = mountPoints.Count == 0 ? -1 : await KernelCall.RunAsync(() => Freeze(mountPoints[0], layerId, device), ct).ConfigureAwait(false);
            try
            {
                LayerDevice? old = await served.PauseAsync().ConfigureAwait(false);
                try
                {
                    // Closing flushes the layer and gives up its write lease, which the snapshot needs.
                    if (old is not null)
                    {
                        await old.DisposeAsync().ConfigureAwait(false);
                    }

                    return await Store.SnapshotAsync(layerId, snapshotId, CancellationToken.None).ConfigureAwait(false);
                }
                finally
                {
                    // The layer again: the snapshot's new, empty child after a snapshot, the same data if it failed.
                    // Should it not open, the device fails every request rather than hang the file system.
                    LayerDevice? next = null;
                    try
                    {
                        next = await Store.OpenLayerAsync(layerId, writable: true, CancellationToken.None).ConfigureAwait(false);
                    }
                    finally
                    {
                        served.Resume(next);
                    }
                }
            }
            finally
            {
                if (frozen >= 0)
                {
                    await KernelCall.RunAsync(() => Thaw(frozen, layerId, device), CancellationToken.None).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The layers attached by <see cref="AttachDeviceAsync"/> and their device paths, oldest first.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> ListDevices()
    {
        _gate.Wait();
        try
        {
            return [.. _devices.Select(d => new KeyValuePair<string, string>(d.Name, d.Loop.Path))];
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Opens layer <paramref name="layerId"/> and attaches it as a loop device, without a file system
    /// mount (mkfs of the base file system layer). The caller releases the result.</summary>
    internal async Task<LayerAttachment> AttachAsync(string layerId, bool writable, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_entries.Find(e => e.LayerId == layerId) is Entry elsewhere)
            {
                throw new BlockDriverException(ErrorKind.InUse, $"layer {layerId} is already mounted at {elsewhere.Directory}.");
            }

            return await AttachCoreAsync(layerId, writable, ct).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    // A device just unmounted can stay claimed a moment by a copy of its mount in a new mount namespace: a container
    // started (by anyone on the host) while it was mounted copies the host's mount table, and holds the file system
    // until it drops its old root. While layer LAYERID's device is claimed but mounted nowhere this process sees,
    // waits up to TIMEOUT, outside the gate, for that to change; the caller then checks again under the gate.
    private async Task WaitForHiddenClaimAsync(string layerId, TimeSpan timeout, CancellationToken ct)
    {
        LayerAttachment? attachment;
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            attachment = _disposed ? null : _devices.Find(d => d.Name == layerId);
        }
        finally
        {
            _gate.Release();
        }

        DateTime deadline = DateTime.UtcNow + timeout;
        while (attachment is { Loop.IsAttached: true } && IsClaimed(attachment) && MountPointsOf(attachment.Loop.Path).Count == 0 &&
               DateTime.UtcNow < deadline)
        {
            await Task.Delay(50, ct).ConfigureAwait(false);
        }
    }

    private static bool IsClaimed(LayerAttachment attachment)
    {
        try
        {
            RequireUnclaimed(attachment);
            return false;
        }
        catch (BlockDriverException ex) when (ex.Kind == ErrorKind.InUse)
        {
            return true;
        }
    }

    // The mount points in this process's mount namespace of the file system on loop device DEVICE, found by its
    // major:minor (/sys/block/loopN/dev), as a bind mount or a mount under another name of the device shows it too.
    /// <summary>Where the whole file system on block device <paramref name="device"/> (/dev/loopN) is mounted in this
    /// process's mount namespace (mounts of a subdirectory left out); empty when it is not.</summary>
    public static IReadOnlyList<string> WholeFileSystemMountPoints(string device)
    {
        ArgumentException.ThrowIfNullOrEmpty(device);
        string[] number = File.ReadAllText($"/sys/block/{Path.GetFileName(device)}/dev").Trim().Split(':');
        int major = int.Parse(number[0], System.Globalization.CultureInfo.InvariantCulture);
        int minor = int.Parse(number[1], System.Globalization.CultureInfo.InvariantCulture);
        return [.. MountInfoEntry.ReadAll().Where(m => m.Major == major && m.Minor == minor && m.Root == "/").Select(m => m.MountPoint)];
    }

    private static List<string> MountPointsOf(string device)
    {
        string[] number = File.ReadAllText($"/sys/block/{Path.GetFileName(device)}/dev").Trim().Split(':');
        int major = int.Parse(number[0], System.Globalization.CultureInfo.InvariantCulture);
        int minor = int.Parse(number[1], System.Globalization.CultureInfo.InvariantCulture);
        return [.. MountInfoEntry.ReadAll().Where(m => m.Major == major && m.Minor == minor).Select(m => m.MountPoint)];
    }

    // FIFREEZE on a directory of the file system: freeze_super syncs it (data, then ext4_freeze commits and empties the
    // journal and clears needs_recovery) and blocks new writes until FITHAW. Returns the open directory for the thaw.
    // The loop device's I/O reaches this process's FUSE server, so this runs on a KernelCall thread.
    private static int Freeze(string mountPoint, string layerId, string device)
    {
        int fd = LoopNative.Open(mountPoint, LoopNative.ORdOnly | LoopNative.OCloExec, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new BlockDriverException(ErrorKind.Unavailable, $"opening {mountPoint} (layer {layerId}, {device}) to freeze it failed: {MountNative.Describe(errno)}.");
        }

        if (LoopNative.Ioctl(fd, MountNative.FiFreeze, 0) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            LoopNative.Close(fd);
            throw new BlockDriverException(errno == MountNative.EBUSY ? ErrorKind.InUse : ErrorKind.Unavailable,
                $"freezing the file system of layer {layerId} ({device}) at {mountPoint} failed: {MountNative.Describe(errno)}{(errno == MountNative.EBUSY ? "; it is frozen already" : "")}.");
        }

        return fd;
    }

    private static void Thaw(int fd, string layerId, string device)
    {
        try
        {
            if (LoopNative.Ioctl(fd, MountNative.FiThaw, 0) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new BlockDriverException(ErrorKind.Unavailable, $"thawing the file system of layer {layerId} ({device}) failed: {MountNative.Describe(errno)}.");
            }
        }
        finally
        {
            LoopNative.Close(fd);
        }
    }

    // A mounted file system claims its block device exclusively, in whichever mount namespace it was mounted, so an
    // O_EXCL open fails with EBUSY exactly while someone still has the device mounted (or held exclusively).
    private static void RequireUnclaimed(LayerAttachment attachment)
    {
        const int OExcl = 0x80;
        int fd = LoopNative.Open(attachment.Loop.Path, LoopNative.ORdOnly | LoopNative.OCloExec | OExcl, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new BlockDriverException(errno == MountNative.EBUSY ? ErrorKind.InUse : ErrorKind.Unavailable,
                $"layer {attachment.Name} ({attachment.Loop.Path}) cannot be detached: {(errno == MountNative.EBUSY ? "it is still mounted or held" : MountNative.Describe(errno))}.");
        }

        LoopNative.Close(fd);
    }

    internal static string NormalizeDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string full = Path.GetFullPath(directory);
        return full.Length > 1 ? full.TrimEnd('/') : full;
    }

    // Under _gate.
    private async Task<LayerAttachment> AttachCoreAsync(string layerId, bool writable, CancellationToken ct, bool switchable = false)
    {
        FuseDeviceServer server = await ServerAsync(ct).ConfigureAwait(false);
        LayerDevice opened = await Store.OpenLayerAsync(layerId, writable, ct).ConfigureAwait(false);
        IBlockDevice device = switchable ? new SwitchableLayerDevice(opened) : opened;
        bool added = false;
        try
        {
            server.AddFile(layerId, device);
            added = true;
            LoopDevice loop = await KernelCall.RunAsync(() => LoopDevice.Attach(server.GetFilePath(layerId), new LoopOptions { ReadOnly = !writable }), CancellationToken.None)
                .ConfigureAwait(false);
            return new LayerAttachment(device, server, layerId, loop);
        }
        catch (Exception ex)
        {
            try
            {
                if (added)
                {
                    await server.RemoveFileAsync(layerId, TimeSpan.FromSeconds(10), CancellationToken.None).ConfigureAwait(false);
                }
            }
            finally
            {
                await device.DisposeAsync().ConfigureAwait(false);
            }

            throw new BlockDriverException(ex is BlockDriverException b ? b.Kind : ErrorKind.Unavailable,
                $"attaching layer {layerId} as a loop device failed: {ex.Message}", ex);
        }
    }

    // Under _gate: the FUSE server, mounted on first use after cleaning what a dead process left in FuseDirectory.
    private async Task<FuseDeviceServer> ServerAsync(CancellationToken ct)
    {
        await _serverGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return _server ??= await CreateServerAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _serverGate.Release();
        }
    }

    // Under _serverGate.
    private async Task<FuseDeviceServer> CreateServerAsync(CancellationToken ct)
    {
        // Listed before the stale FUSE mount goes: once it is detached, the loop devices' backing files no longer
        // show its path. Nothing is done to them unless CleanupStaleAsync finds the mount's server dead.
        string prefix = FuseDirectory + "/";
        List<(int Index, string BackingFile)> loops = [.. LoopDevice.ListBound().Where(b => b.BackingFile.StartsWith(prefix, StringComparison.Ordinal))];
        if (FuseMounts.FindAt(FuseDirectory).Count == 0)
        {
            // Not on a dead FUSE mount, where stat fails (ENOTCONN) and CreateDirectory would throw.
            Directory.CreateDirectory(FuseDirectory);
        }

        await FuseMounts.CleanupStaleAsync(FuseDirectory, ct: ct).ConfigureAwait(false);
        HeldStaleDevices = await KernelCall.RunAsync(() => CleanStaleLoopDevices(loops), ct).ConfigureAwait(false);
        return await FuseDeviceServer.MountAsync(FuseDirectory, ct: ct).ConfigureAwait(false);
    }

    // No live server serves FuseDirectory (CleanupStaleAsync would have thrown InUse): every loop device still bound
    // to a file there belongs to a dead process, and so does every file system mounted on one of them. Every file
    // system goes first, then every device, and a device that stays held does not stop the rest: a container still
    // running on the dead process's mount keeps that file system (its root, in its own mount namespace) and so its
    // loop device; marked for clearing, the device unbinds when the container lets go. Returns those devices. (Failing
    // instead would leave the rest for a retry that can no longer find them: once the stale FUSE mount is detached,
    // the devices' backing files no longer show its path.)
    private static List<string> CleanStaleLoopDevices(List<(int Index, string BackingFile)> loops)
    {
        foreach ((int index, string file) in loops)
        {
            string device = $"/dev/loop{index}";
            foreach (MountInfoEntry mount in MountInfoEntry.ReadAll().Where(m => m.Source == device).Reverse())
            {
                if (MountNative.Umount2(mount.MountPoint, MountNative.MntDetach) != 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    throw new BlockDriverException(ErrorKind.InUse,
                        $"unmounting {mount.MountPoint}, left on {device} ({file}) by a dead process, failed: {MountNative.Describe(errno)}.");
                }
            }
        }

        var held = new List<string>();
        DateTime deadline = DateTime.UtcNow + StaleDetachWait;
        foreach ((int index, string file) in loops)
        {
            string device = $"/dev/loop{index}";
            try
            {
                LoopDevice.DetachDevice(device, Max(deadline - DateTime.UtcNow, TimeSpan.Zero));
            }
            catch (BlockDriverException ex) when (ex.Kind == ErrorKind.InUse)
            {
                held.Add($"{device} ({file})");
            }
        }

        return held;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static void MountFileSystem(LayerAttachment attachment, string directory, bool readOnly, MountPrivileges privileges, string layerId)
    {
        // ro,noload: no journal replay, so a read-only mount writes nothing (a sealed layer never changes).
        // discard: freed blocks are trimmed at once, which punches holes in the FUSE file and frees the layer's storage.
        string data = readOnly ? "noload" : "discard";
        ulong flags = (readOnly ? MountNative.MsRdOnly : 0)
            | (privileges.HasFlag(MountPrivileges.SetUid) ? 0 : MountNative.MsNoSuid)
            | (privileges.HasFlag(MountPrivileges.Devices) ? 0 : MountNative.MsNoDev);
        if (MountNative.Mount(attachment.Loop.Path, directory, "ext4", flags, data) == 0)
        {
            return;
        }

        int errno = Marshal.GetLastPInvokeError();
        string what = $"mounting layer {layerId} ({attachment.Loop.Path}) at {directory} ({Describe(readOnly, privileges)},{data}) failed: {MountNative.Describe(errno)}";
        throw errno switch
        {
            MountNative.EINVAL => new BlockDriverException(ErrorKind.InvalidArgument,
                $"{what}; the layer holds no ext4 file system (create image layers over the base file system layer)."),
            MountNative.EBUSY => new BlockDriverException(ErrorKind.InUse, what + "."),
            MountNative.ENOENT or MountNative.ENOTDIR => new BlockDriverException(ErrorKind.NotFound, what + "."),
            _ => new BlockDriverException(ErrorKind.Unavailable, what + "."),
        };
    }

    private static async Task ReleaseAfterFailureAsync(LayerAttachment attachment, Exception cause)
    {
        try
        {
            await attachment.ReleaseAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw new AggregateException($"releasing layer {attachment.Name} after a failed mount failed too.", cause, ex);
        }
    }

    // On an entry being unmounted (its transition marks it as ours), outside the gate. Each step is recorded as done,
    // so that a failed teardown resumes where it stopped.
    private static async Task TeardownAsync(Entry entry)
    {
        if (entry.FileSystemMounted)
        {
            await KernelCall.RunAsync(() => UnmountFileSystem(entry)).ConfigureAwait(false);
            entry.FileSystemMounted = false;
        }

        await entry.Attachment!.ReleaseAsync().ConfigureAwait(false);
    }

    private static void UnmountFileSystem(Entry entry)
    {
        if (!entry.ReadOnly)
        {
            // syncfs reports a write-back error (an I/O error of the layer) that umount would swallow.
            int fd = LoopNative.Open(entry.Directory, LoopNative.ORdOnly | LoopNative.OCloExec, 0);
            if (fd < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new BlockDriverException(ErrorKind.Unavailable, $"opening {entry.Directory} to flush it failed: {MountNative.Describe(errno)}.");
            }

            try
            {
                if (MountNative.SyncFs(fd) != 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    throw new BlockDriverException(ErrorKind.Unavailable,
                        $"flushing the file system of layer {entry.LayerId} at {entry.Directory} failed: {MountNative.Describe(errno)}.");
                }
            }
            finally
            {
                LoopNative.Close(fd);
            }
        }

        // EBUSY: a process has a file open or its working directory there; it may be on its way out, so retry briefly.
        DateTime deadline = DateTime.UtcNow + BusyRetry;
        while (MountNative.Umount2(entry.Directory, 0) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == MountNative.EBUSY && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
                continue;
            }

            if (errno == MountNative.EINVAL && !MountInfoEntry.ReadAll().Any(m => m.MountPoint == entry.Directory))
            {
                // Someone else unmounted it already; the loop device is free to go.
                return;
            }

            throw new BlockDriverException(errno == MountNative.EBUSY ? ErrorKind.InUse : ErrorKind.Unavailable,
                $"unmounting layer {entry.LayerId} at {entry.Directory} failed: {MountNative.Describe(errno)}.");
        }
    }

    private Entry? FindByDirectory(string directory) => _entries.Find(e => e.Directory == directory);

    // As mount(8) lists the options that differ between mounts: "rw,nosuid,nodev", "ro".
    private static string Describe(bool readOnly, MountPrivileges privileges) =>
        (readOnly ? "ro" : "rw")
        + (privileges.HasFlag(MountPrivileges.SetUid) ? "" : ",nosuid")
        + (privileges.HasFlag(MountPrivileges.Devices) ? "" : ",nodev");

    // A mount: in progress (Transition set: being mounted, Attachment not yet set, or being unmounted) or settled.
    // Guarded by _gate.
    private sealed class Entry
    {
        private Entry(string layerId, string directory, bool readOnly, MountPrivileges privileges)
        {
            LayerId = layerId;
            Directory = directory;
            ReadOnly = readOnly;
            Privileges = privileges;
        }

        public string LayerId { get; }

        public string Directory { get; }

        public bool ReadOnly { get; }

        public MountPrivileges Privileges { get; }

        public LayerAttachment? Attachment { get; set; }

        public int References { get; set; } = 1;

        public bool FileSystemMounted { get; set; } = true;

        // Completed when the mount or unmount in progress ends; null when settled.
        public TaskCompletionSource? Transition { get; private set; }

        // A new entry being mounted, listed so that others wait for it instead of mounting the layer again.
        public static Entry Begin(string layerId, string directory, bool readOnly, MountPrivileges privileges, List<Entry> entries)
        {
            var entry = new Entry(layerId, directory, readOnly, privileges);
            entry.BeginTransition();
            entries.Add(entry);
            return entry;
        }

        public void BeginTransition() => Transition = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void EndTransition()
        {
            Transition?.SetResult();
            Transition = null;
        }

        public MountInfo ToInfo() =>
            new(LayerId, Directory, Attachment!.Loop.Path, Attachment.FuseFile, ReadOnly, References) { Privileges = Privileges };
    }
}
