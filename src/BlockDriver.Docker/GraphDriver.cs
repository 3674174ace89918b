using System.Globalization;
using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Daemon;
using BlockDriver.Fuse;
using BlockDriver.Mount;
using BlockDriver.Mount.Tar;
using Microsoft.Extensions.Logging;

namespace BlockDriver.Docker;

/// <summary>
/// Docker's graphdriver operations on the daemon's store: a thin translator from Docker's vocabulary (image layers
/// made by Create and filled by ApplyDiff, read-write layers made by CreateReadWrite, Get/Put mounts) onto
/// <see cref="LayerStore"/> and <see cref="StoreService"/>. <see cref="PluginApi"/> puts it on the wire.
/// </summary>
/// <remarks>
/// <para><b>Layers.</b> Create makes a writable image layer over its parent, or over the store's base file system
/// layer when it has none (<see cref="BaseFilesystem"/>: Docker's "no parent" is that empty ext4); ApplyDiff fills
/// it and seals it. CreateReadWrite makes a writable container layer the same way. Parents must be sealed: creating
/// a child of a writable layer nobody has mounted seals that layer first (Docker's <c>ID-init</c> layer, written
/// through Get/Put and then the parent of the container layer, becomes read-only, as Docker expects); a writable
/// parent still mounted is refused. Every layer made here carries the label <c>blockdriver.docker=NAME</c>.</para>
/// <para><b>Mounts.</b> Get mounts a layer at STORE/mnt/ID through <see cref="StoreService.MountAsync"/> (recorded,
/// so it survives a daemon restart) and counts a reference per call; Put drops one. Sealed layers mount read-only,
/// writable ones read-write. Remove of a layer still mounted there releases every reference first, as Docker's own
/// drivers remove their mounts with the layer; a file system that stays busy fails the Remove and nothing is
/// removed.</para>
/// <para><b>Lingering mounts.</b> The last Put does not unmount at once: the layer stays mounted for
/// <see cref="DockerOptions.UnmountDelay"/> (the mounter keeps one reference for it; a writable one is flushed with
/// syncfs first, so a daemon crash meanwhile loses nothing the container wrote), and a Get within that time takes
/// the mount as it is. dockerd mounts a container's layer at create and again at start, so <c>docker run</c> mounts
/// it once. What needs the layer unmounted unmounts it at once, under the layer's lock: Remove, making it a parent
/// (sealing it), ApplyDiff, Cleanup and the daemon's stop (<see cref="StopAsync"/>). The lingering set is kept in
/// <c>STORE/run/docker-NAME.lingering</c>: after a daemon crash the daemon makes the recorded mounts again, and
/// <see cref="StartAsync"/> schedules the unmount of those nobody holds. A pending unmount that finds the file
/// system busy tries again after another delay.</para>
/// <para><b>Concurrency and lock order.</b> Every operation holds the <see cref="LayerLocks"/> of the layers it
/// touches, taken together in ordinal order; under them it may take, in this order and each only for the call, the
/// daemon's mount gate (<see cref="StoreService"/>), the mounter's gate (<see cref="LayerMounter"/>) and the store's
/// mutex and leases (<see cref="LayerStore"/>). No lock is held while a response streams: Diff, Changes and DiffSize
/// hold the layer locks only while their mounts are taken (<see cref="LayerComparison"/>), and the mount references
/// keep the file systems there while the tar streams, so dockerd may create and fill a layer over the same parent
/// before it reads a Diff (its layer Register does), and a client that stops reading stalls nobody. ApplyDiff holds
/// the lock of its own new layer, which nothing else uses, while it reads the request's tar.</para>
/// </remarks>
public sealed class GraphDriver
{
    /// <summary>The label every layer the plugin makes carries; its value is the plugin's name.</summary>
    public const string Label = "blockdriver.docker";

    private readonly StoreService _service;
    private readonly DockerOptions _options;
    private readonly ILogger<GraphDriver> _logger;
    private readonly LayerLocks _locks = new();
    private readonly long _baseSize;
    private readonly TimeSpan _unmountDelay;
    private LingeringMounts? _lingering;

    /// <summary>A driver on the daemon's store.</summary>
    /// <exception cref="BlockDriverException">InvalidArgument when <see cref="DockerOptions.BaseSize"/> is no size or
    /// <see cref="DockerOptions.UnmountDelay"/> no delay.</exception>
    public GraphDriver(StoreService service, DockerOptions options, ILogger<GraphDriver> logger)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(options);
        _service = service;
        _options = options;
        _logger = logger;
        _baseSize = DockerSize.Parse(options.BaseSize, "Docker:BaseSize");
        _unmountDelay = options.ParseUnmountDelay();
    }

    private LayerStore Store => _service.Store;

    // Made at start: the store's paths are known once the daemon's store is open.
    private LingeringMounts Lingering => _lingering ??= new LingeringMounts(Path.Combine(Store.Paths.Run, $"docker-{_options.Name}.lingering"));

    /// <summary>The layers whose last Put left them mounted, waiting for <see cref="DockerOptions.UnmountDelay"/>.</summary>
    public IReadOnlyList<string> LingeringLayers => Lingering.Ids;

    /// <summary>At the daemon's start, after the store recovered the mounts a crashed daemon had recorded: those the
    /// state file lists as lingering (mounted at STORE/mnt/ID, one reference, no Get holding it) get their unmount
    /// scheduled, since no Put will ever come for them.</summary>
    public async Task StartAsync(CancellationToken ct)
    {
        IReadOnlyList<string> recorded = Lingering.ReadStateFile();
        foreach (string id in recorded)
        {
            if (!IsValidId(id))
            {
                continue;
            }

            using IDisposable held = await _locks.AcquireAsync([id], ct).ConfigureAwait(false);
            if (_service.Mounter.Find(id) is { References: 1 } mount && mount.Directory == MountDirectory(id))
            {
                Log.RecoveredLingering(_logger, id, _unmountDelay.TotalSeconds);
                Linger(id);
            }
        }

        // Ids that did not come back (not remounted, removed meanwhile) are dropped from the file.
        if (Lingering.Count == 0 && recorded.Count > 0)
        {
            File.Delete(Lingering.StateFile);
        }
    }

    /// <summary>At the daemon's stop, before the store unmounts everything: unmounts the lingering layers now (and
    /// cancels their pending unmounts). A failure is logged; the store's stop then tries again.</summary>
    public async Task StopAsync()
    {
        foreach (string id in Lingering.Ids)
        {
            using IDisposable held = await _locks.AcquireAsync([id], CancellationToken.None).ConfigureAwait(false);
            try
            {
                _ = await UnmountLingeringAsync(id).ConfigureAwait(false);
            }
            catch (BlockDriverException ex)
            {
                Log.LingeringUnmountFailed(_logger, id, ex.Message);
                _ = Lingering.Remove(id);
            }
        }
    }

    /// <summary>Where Get mounts layer <paramref name="id"/>: STORE/mnt/ID.</summary>
    public string MountDirectory(string id) => Path.Combine(Store.Paths.Mounts, id);

    /// <summary>Init: checks what dockerd asks for. The plugin keeps nothing in <c>Home</c>: layers live in the
    /// store. User namespace remapping and storage options at Init are refused (the plugin's settings are the
    /// daemon's <c>Docker</c> section).</summary>
    public void Init(Json.InitRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.UIDMaps is { Count: > 0 } || request.GIDMaps is { Count: > 0 })
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                "blockdriver does not support user namespace remapping (--userns-remap): layer tars are applied with the uids and gids they hold.");
        }

        if (request.Opts is { Count: > 0 } opts)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"blockdriver takes no storage options at Init ({string.Join(", ", opts)}): set Docker:BaseSize in the blockdriver daemon's configuration, or size= per container (docker run --storage-opt size=...).");
        }

        Log.Initialized(_logger, _options.Name, request.Home ?? "", Store.Root);
    }

    /// <summary>Create (image layer, <paramref name="readWrite"/> false) and CreateReadWrite (container layer).</summary>
    /// <exception cref="BlockDriverException">InvalidArgument (bad id, unknown storage option, a size other than the
    /// parent's), AlreadyExists, NotFound (unknown parent), InUse (a writable parent that is mounted).</exception>
    public async Task CreateAsync(string? id, string? parent, IReadOnlyDictionary<string, string>? storageOpt, bool readWrite, CancellationToken ct)
    {
        string layerId = RequireId(id);
        string? parentId = parent is { Length: > 0 } p ? p : null;
        if (parentId is not null)
        {
            LayerIds.Validate(parentId);
        }

        long? size = null;
        foreach ((string key, string value) in storageOpt ?? new Dictionary<string, string>())
        {
            size = key.Equals("size", StringComparison.OrdinalIgnoreCase)
                ? DockerSize.Parse(value, "storage option size")
                : throw new BlockDriverException(ErrorKind.InvalidArgument, $"storage option \"{key}\" is not supported by blockdriver (it takes: size).");
        }

        using IDisposable held = await _locks.AcquireAsync([layerId, parentId], ct).ConfigureAwait(false);
        if (Store.Find(layerId) is not null)
        {
            throw new BlockDriverException(ErrorKind.AlreadyExists, $"layer {layerId} already exists.");
        }

        string storeParent;
        if (parentId is null)
        {
            // Docker's "no parent" is an empty file system: the store's base ext4 layer of that size.
            storeParent = await _service.EnsureBaseFilesystemAsync(size ?? _baseSize, CancellationToken.None).ConfigureAwait(false);
        }
        else
        {
            Layer parentLayer = Store.Find(parentId) ?? throw new BlockDriverException(ErrorKind.NotFound, $"parent layer {parentId} does not exist.");
            CheckSize(size, parentLayer);
            if (!parentLayer.IsSealed)
            {
                await SealForChildAsync(parentLayer, layerId).ConfigureAwait(false);
            }

            storeParent = parentId;
        }

        // Not the request's token from here: a client that goes away must not leave half a layer.
        await Store.CreateAsync(new LayerSpec
        {
            Id = layerId,
            Parent = storeParent,
            Kind = readWrite ? LayerKind.Container : LayerKind.Image,
            Labels = new Dictionary<string, string> { [Label] = _options.Name },
        }, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Remove: unmounts the layer if Get left it mounted, then removes it and its mount directory.</summary>
    /// <exception cref="BlockDriverException">NotFound ("does not exist"), InUse (children, mounted elsewhere, a
    /// busy file system, open by another process).</exception>
    public async Task RemoveAsync(string? id, CancellationToken ct)
    {
        string layerId = RequireId(id);
        using IDisposable held = await _locks.AcquireAsync([layerId], ct).ConfigureAwait(false);
        Layer layer = RequireLayer(layerId);
        if (Store.Children(layerId) is { Count: > 0 } children)
        {
            throw new BlockDriverException(ErrorKind.InUse,
                $"layer {layerId} has {children.Count} child layer(s) ({string.Join(", ", children.Take(5))}{(children.Count > 5 ? ", ..." : "")}): remove them first.");
        }

        string directory = MountDirectory(layerId);
        if (_service.Mounter.Find(layerId) is MountInfo mount)
        {
            if (mount.Directory != directory)
            {
                throw new BlockDriverException(ErrorKind.InUse, $"layer {layerId} is mounted at {mount.Directory}, not by the Docker plugin: unmount it first.");
            }

            bool lingering = Lingering.Contains(layerId);
            if (!lingering)
            {
                Log.RemovingMounted(_logger, layerId, mount.References);
            }

            while (await _service.UnmountAsync(directory, CancellationToken.None).ConfigureAwait(false) > 0)
            {
            }

            _ = Lingering.Remove(layerId);
        }

        await Store.RemoveAsync(layer.Id, CancellationToken.None).ConfigureAwait(false);
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory);
        }
    }

    /// <summary>Get: mounts the layer at <see cref="MountDirectory"/> (or counts one more reference) and returns that
    /// directory. <paramref name="mountLabel"/> (SELinux) is not supported and ignored.</summary>
    public async Task<string> GetAsync(string? id, string? mountLabel, CancellationToken ct)
    {
        string layerId = RequireId(id);
        using IDisposable held = await _locks.AcquireAsync([layerId], ct).ConfigureAwait(false);
        _ = RequireLayer(layerId);
        if (mountLabel is { Length: > 0 })
        {
            Log.MountLabelIgnored(_logger, layerId, mountLabel);
        }

        // A lingering mount becomes this Get's: its reference is the one the mounter kept.
        string directory = MountDirectory(layerId);
        if (Lingering.Remove(layerId))
        {
            if (_service.Mounter.Find(layerId) is { } lingering && lingering.Directory == directory)
            {
                Log.ReusedLingering(_logger, layerId);
                return directory;
            }
        }

        MountJson mount = await _service.MountAsync(layerId, directory, readOnly: false, MountPrivileges.All, CancellationToken.None).ConfigureAwait(false);
        return mount.Directory;
    }

    /// <summary>Put: drops one reference of Get's mount. The last one flushes the file system (syncfs) and leaves the
    /// layer mounted for <see cref="DockerOptions.UnmountDelay"/> (a Get meanwhile takes the mount over), or unmounts
    /// it when that is 0.</summary>
    /// <exception cref="BlockDriverException">NotFound (unknown layer), InvalidArgument (not mounted: a Put without a
    /// Get), InUse (the file system is busy; the reference stays).</exception>
    public async Task PutAsync(string? id, CancellationToken ct)
    {
        string layerId = RequireId(id);
        using IDisposable held = await _locks.AcquireAsync([layerId], ct).ConfigureAwait(false);
        _ = RequireLayer(layerId);
        string directory = MountDirectory(layerId);
        if (_service.Mounter.Find(layerId) is not { } mount || mount.Directory != directory || Lingering.Contains(layerId))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer {layerId} is not mounted by Get: a Put without a matching Get.");
        }

        if (mount.References == 1 && _unmountDelay > TimeSpan.Zero)
        {
            // What the container wrote is on the layer's file from here, as an unmount would have left it.
            if (!mount.ReadOnly)
            {
                await KernelCall.RunAsync(() => FileSystemSync.Flush(directory), CancellationToken.None).ConfigureAwait(false);
            }

            Linger(layerId);
            return;
        }

        await _service.UnmountAsync(directory, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Exists: whether the store has the layer (an invalid id has none).</summary>
    public bool Exists(string? id) => id is not null && IsValidId(id) && Store.Find(id) is not null;

    /// <summary>Status: store figures for <c>docker info</c>.</summary>
    public IReadOnlyList<string[]> Status()
    {
        StoreUsage usage = Store.GetStoreUsage();
        IReadOnlyList<Layer> layers = Store.List();
        int mine = layers.Count(l => l.Labels.TryGetValue(Label, out string? name) && name == _options.Name);
        int mounted = _service.Mounter.List().Count(m => m.Directory == MountDirectory(m.LayerId));
        return
        [
            ["Backing Filesystem", BackingFileSystem(Store.Root)],
            ["Store", Store.Root],
            ["Layers", mine.ToString(CultureInfo.InvariantCulture)],
            ["Store Layers", layers.Count.ToString(CultureInfo.InvariantCulture)],
            ["Mounted", mounted.ToString(CultureInfo.InvariantCulture)],
            ["Allocated", ByteSize.FormatWithBytes(usage.Allocated)],
            ["Layer Files", ByteSize.FormatWithBytes(usage.LayerBytes)],
            ["Shared", ByteSize.FormatWithBytes(usage.Shared)],
            ["Exclusive", ByteSize.FormatWithBytes(usage.Exclusive)],
            ["Unused", ByteSize.FormatWithBytes(usage.Unused)],
            ["Overcommit", usage.Overcommit.ToString("0.00", CultureInfo.InvariantCulture)],
            ["Base Size", ByteSize.FormatWithBytes(_baseSize)],
        ];
    }

    /// <summary>GetMetadata: the layer's file, kind, state, parent, sizes (bytes) and, while mounted, its device and
    /// mount directory (<c>docker inspect</c>'s GraphDriver.Data).</summary>
    public IReadOnlyDictionary<string, string> GetMetadata(string? id)
    {
        string layerId = RequireId(id);
        Layer layer = RequireLayer(layerId);
        LayerUsage usage = Store.GetUsage(layerId);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["File"] = layer.Path,
            ["Kind"] = layer.Kind.ToString().ToLowerInvariant(),
            ["State"] = layer.State.ToString().ToLowerInvariant(),
            ["Parent"] = layer.Parent ?? "",
            ["Size"] = usage.Size.ToString(CultureInfo.InvariantCulture),
            ["VirtualSize"] = usage.VirtualSize.ToString(CultureInfo.InvariantCulture),
            ["Capacity"] = layer.Capacity.ToString(CultureInfo.InvariantCulture),
        };
        if (_service.Mounter.Find(layerId) is MountInfo mount)
        {
            metadata["Device"] = mount.LoopDevice;
            metadata["MountDir"] = mount.Directory;
        }

        return metadata;
    }

    /// <summary>Cleanup (dockerd is shutting down): releases every mount Get made, whatever its references, and the
    /// lingering ones.</summary>
    public async Task CleanupAsync(CancellationToken ct)
    {
        var failures = new List<Exception>();
        foreach (MountInfo mount in _service.Mounter.List().Where(m => m.Directory == MountDirectory(m.LayerId)))
        {
            using IDisposable held = await _locks.AcquireAsync([mount.LayerId], ct).ConfigureAwait(false);
            if (!Lingering.Contains(mount.LayerId))
            {
                Log.CleanupUnmounting(_logger, mount.LayerId, mount.References);
            }

            try
            {
                while (await _service.UnmountAsync(mount.Directory, CancellationToken.None).ConfigureAwait(false) > 0)
                {
                }

                _ = Lingering.Remove(mount.LayerId);
            }
            catch (BlockDriverException ex)
            {
                failures.Add(ex);
            }
        }

        if (failures.Count > 0)
        {
            throw new AggregateException("Cleanup could not unmount every layer.", failures);
        }
    }

    /// <summary>ApplyDiff: applies layer tar <paramref name="tar"/> to the layer Create made (mounted for the purpose),
    /// seals it, and returns the bytes of file content applied. A tar that fails half way (malformed, hostile, cut
    /// off) changes nothing: the layer is reverted to an empty child of its parent, as Create made it.</summary>
    /// <exception cref="BlockDriverException">ReadOnly (the layer is sealed), InUse (mounted by Get), InvalidArgument
    /// (a parent other than the layer's, a hostile tar).</exception>
    public async Task<long> ApplyDiffAsync(string? id, string? parent, Stream tar, CancellationToken ct)
    {
        string layerId = RequireId(id);
        using IDisposable held = await _locks.AcquireAsync([layerId], ct).ConfigureAwait(false);
        Layer layer = RequireLayer(layerId);
        if (layer.IsSealed)
        {
            throw new BlockDriverException(ErrorKind.ReadOnly,
                $"layer {layerId} is sealed (applied already, or made a parent): ApplyDiff needs a layer Create made and nothing has used yet.");
        }

        CheckParent(layer, parent);
        _ = await UnmountLingeringAsync(layerId).ConfigureAwait(false);
        if (_service.Mounter.Find(layerId) is MountInfo mount)
        {
            throw new BlockDriverException(ErrorKind.InUse, $"layer {layerId} is mounted at {mount.Directory}: ApplyDiff needs it unmounted (Put every Get).");
        }

        long bytes;
        try
        {
            bytes = await _service.ApplyTarAsync(layerId, tar, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (layer.Parent is not null)
        {
            // A tar refused half way (or a client gone) leaves the layer as Create made it: an empty child of its
            // parent, so a retried pull applies onto nothing stale.
            try
            {
                await Store.RevertAsync(layerId, layer.Parent, CancellationToken.None).ConfigureAwait(false);
                Log.ApplyRolledBack(_logger, layerId, ex.Message);
            }
            catch (BlockDriverException revert)
            {
                // The tar's error is the one dockerd shows; the layer keeps what was applied until it is removed.
                Log.ApplyRollbackFailed(_logger, layerId, revert.Message, ex.Message);
            }

            throw;
        }

        await Store.SealAsync(layerId, ct: CancellationToken.None).ConfigureAwait(false);
        return bytes;
    }

    /// <summary>Changes: what the layer changed relative to <paramref name="parent"/> (see
    /// <see cref="OpenComparisonAsync"/>), listed as Docker lists them (<see cref="DockerChanges"/>).</summary>
    public async Task<IReadOnlyList<LayerChange>> ChangesAsync(string? id, string? parent, CancellationToken ct)
    {
        LayerComparison comparison = await OpenComparisonAsync(id, parent, ct).ConfigureAwait(false);
        await using (comparison.ConfigureAwait(false))
        {
            return DockerChanges.WithParentDirectories(comparison.Changes());
        }
    }

    /// <summary>DiffSize: bytes of regular-file content the layer added or modified relative to
    /// <paramref name="parent"/> (Docker's naive DiffSize; <c>docker ps -s</c>'s SIZE).</summary>
    public async Task<long> DiffSizeAsync(string? id, string? parent, CancellationToken ct)
    {
        LayerComparison comparison = await OpenComparisonAsync(id, parent, ct).ConfigureAwait(false);
        await using (comparison.ConfigureAwait(false))
        {
            return comparison.DiffSize();
        }
    }

    /// <summary>Diff: writes the layer tar of the layer's changes relative to <paramref name="parent"/> to
    /// <paramref name="output"/>. Every check, and the mounts, come before the first byte is written, so a refusal
    /// can still be an error status. No lock is held while the tar streams: dockerd's layer Register opens a Diff and
    /// creates a layer over the same parent before it reads a byte of it.</summary>
    public async Task DiffAsync(string? id, string? parent, Stream output, CancellationToken ct)
    {
        LayerComparison comparison = await OpenComparisonAsync(id, parent, ct).ConfigureAwait(false);
        await using (comparison.ConfigureAwait(false))
        {
            _ = await comparison.WriteDiffAsync(output, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Mounts the layer and what dockerd compares it with, as moby's own drivers read the parent argument
    /// (NaiveDiffDriver): empty is "no parent: the whole layer" (compared with the empty base file system at the
    /// bottom of its chain, or with nothing); a layer id is that layer, which must be an ancestor (the direct
    /// parent, or an older one for <c>docker build --squash</c>). The layer locks are held while the mounts are
    /// taken, not after: the mount references keep both file systems there while the caller reads them.</summary>
    /// <exception cref="BlockDriverException">NotFound (unknown layer or parent), InvalidArgument (a parent that is
    /// not an ancestor).</exception>
    private async Task<LayerComparison> OpenComparisonAsync(string? id, string? parent, CancellationToken ct)
    {
        string layerId = RequireId(id);
        string? dockerParent = parent is { Length: > 0 } p ? p : null;
        if (dockerParent is not null)
        {
            LayerIds.Validate(dockerParent);
        }

        string? baseId = ComparisonBase(RequireLayer(layerId), dockerParent);
        using IDisposable held = await _locks.AcquireAsync([layerId, baseId], ct).ConfigureAwait(false);
        baseId = ComparisonBase(RequireLayer(layerId), dockerParent);
        return await _service.OpenComparisonAsync(layerId, baseId, CancellationToken.None).ConfigureAwait(false);
    }

    // The store layer a Docker parent argument names (see OpenComparisonAsync).
    private string? ComparisonBase(Layer layer, string? dockerParent)
    {
        if (dockerParent is null)
        {
            Layer root = layer;
            while (root.Parent is string up)
            {
                root = RequireLayer(up);
            }

            return root.Id != layer.Id && IsBaseFilesystem(root) ? root.Id : null;
        }

        Layer ancestor = Store.Find(dockerParent) ?? throw new BlockDriverException(ErrorKind.NotFound, $"parent layer {dockerParent} does not exist.");
        return LayerComparison.IsAncestor(Store, layer, ancestor.Id)
            ? ancestor.Id
            : throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"layer {dockerParent} is not an ancestor of layer {layer.Id}: a layer is compared with its parent, an older ancestor, or nothing.");
    }

    // dockerd names the parent it created the layer on; "" is the base file system (or no parent at all).
    private void CheckParent(Layer layer, string? parent)
    {
        string given = parent ?? "";
        string actual = DockerParentOf(layer);
        if (given != actual)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"layer {layer.Id}'s parent is {(actual.Length == 0 ? "none (the base file system)" : actual)}, not {(given.Length == 0 ? "none" : given)}: ApplyDiff applies onto the layer's own parent.");
        }
    }

    private string DockerParentOf(Layer layer) =>
        layer.Parent is null || IsBaseFilesystem(Store.Find(layer.Parent)) ? "" : layer.Parent;

    private static bool IsBaseFilesystem(Layer? layer) =>
        layer is { Parent: null } && layer.Labels.TryGetValue(BaseFilesystem.Label.Key, out string? value) && value == BaseFilesystem.Label.Value;

    private static void CheckSize(long? size, Layer parent)
    {
        if (size is not long bytes || bytes == parent.Capacity)
        {
            return;
        }

        if (bytes < parent.Capacity)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"storage option size={bytes} is smaller than the parent layer {parent.Id}'s virtual size of {ByteSize.FormatWithBytes(parent.Capacity)}: a layer cannot be smaller than its parent.");
        }

        throw new BlockDriverException(ErrorKind.InvalidArgument,
            $"storage option size={bytes} is larger than the parent layer {parent.Id}'s virtual size of {ByteSize.FormatWithBytes(parent.Capacity)}: growing a layer beyond its parent is not supported (every layer of a chain has the size of its base; set Docker:BaseSize).");
    }

    // The layer will be a parent, so it is sealed now and read-only from here on (Docker's ID-init layer).
    private async Task SealForChildAsync(Layer parent, string childId)
    {
        _ = await UnmountLingeringAsync(parent.Id).ConfigureAwait(false);
        if (_service.Mounter.Find(parent.Id) is MountInfo mount)
        {
            throw new BlockDriverException(ErrorKind.InUse,
                $"parent layer {parent.Id} is writable and mounted at {mount.Directory}: it can become a parent only when unmounted (Put every Get), since it is sealed then.");
        }

        await Store.SealAsync(parent.Id, ct: CancellationToken.None).ConfigureAwait(false);
        Log.SealedParent(_logger, parent.Id, childId);
    }

    // Under the layer's lock: the mount stays, with the reference the mounter keeps for it, and its unmount is
    // scheduled after the delay.
    private void Linger(string id)
    {
        CancellationToken pending = Lingering.Add(id);
        Log.Lingering(_logger, id, _unmountDelay.TotalSeconds);
        _ = UnmountLaterAsync(id, pending);
    }

    // The pending unmount of a lingering layer. A Get or another unmount first cancels it; a busy file system (a
    // process still has a file open there) is tried again after another delay.
    private async Task UnmountLaterAsync(string id, CancellationToken pending)
    {
        try
        {
            await Task.Delay(_unmountDelay, pending).ConfigureAwait(false);
            using IDisposable held = await _locks.AcquireAsync([id], pending).ConfigureAwait(false);
            if (!Lingering.IsCurrent(id, pending))
            {
                return;
            }

            try
            {
                _ = await UnmountLingeringAsync(id).ConfigureAwait(false);
            }
            catch (BlockDriverException ex) when (ex.Kind == ErrorKind.InUse)
            {
                Log.LingeringUnmountFailed(_logger, id, ex.Message + " (trying again later)");
                Linger(id);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Nobody awaits this task: the failure is logged and the mount left to Remove, Cleanup or the daemon's
                // stop (Unavailable: the daemon is stopping, or the layer could not be flushed).
                Log.LingeringUnmountFailed(_logger, id, ex.Message);
                _ = Lingering.Remove(id);
            }
        }
        catch (OperationCanceledException) when (pending.IsCancellationRequested)
        {
            // A Get took the mount, or it was unmounted by Remove, a seal, Cleanup or the daemon's stop.
        }
    }

    // Under the layer's lock: unmounts the layer now if it lingers; false when it did not. On failure it still
    // lingers (its mount and pending unmount unchanged).
    private async Task<bool> UnmountLingeringAsync(string id)
    {
        if (!Lingering.Contains(id))
        {
            return false;
        }

        if (_service.Mounter.Find(id) is { } mount && mount.Directory == MountDirectory(id))
        {
            _ = await _service.UnmountAsync(mount.Directory, CancellationToken.None).ConfigureAwait(false);
        }

        _ = Lingering.Remove(id);
        Log.UnmountedLingering(_logger, id);
        return true;
    }

    private Layer RequireLayer(string id) =>
        Store.Find(id) ?? throw new BlockDriverException(ErrorKind.NotFound, $"layer {id} does not exist.");

    private static string RequireId(string? id)
    {
        if (id is not { Length: > 0 })
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, "the request names no layer (ID is empty).");
        }

        LayerIds.Validate(id);
        return id;
    }

    private static bool IsValidId(string id)
    {
        try
        {
            LayerIds.Validate(id);
            return true;
        }
        catch (BlockDriverException)
        {
            return false;
        }
    }

    // The type of the file system holding the store: the mount with the longest mount point containing it.
    private static string BackingFileSystem(string root)
    {
        MountInfoEntry? best = null;
        foreach (MountInfoEntry entry in MountInfoEntry.ReadAll())
        {
            string point = entry.MountPoint == "/" ? "/" : entry.MountPoint + "/";
            if ((root + "/").StartsWith(point, StringComparison.Ordinal) && (best is null || entry.MountPoint.Length >= best.MountPoint.Length))
            {
                best = entry;
            }
        }

        return best?.FileSystemType ?? "unknown";
    }
}
