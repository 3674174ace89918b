using BlockDriver.Abstractions;
using BlockDriver.Core;
using BlockDriver.Mount;
using BlockDriver.Mount.Tar;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace BlockDriver.Daemon;

/// <summary>
/// The hosted service that owns the store, its <see cref="LayerMounter"/> and the daemon's run-time files. It starts
/// before the admin API listens and stops after it: start takes the store's daemon lock (a second daemon is refused),
/// opens the store, removes a stale admin socket, and recovers from a predecessor that died with layers mounted;
/// stop unmounts everything (file systems, loop devices, the FUSE mount; each layer flushed) and closes the store.
/// </summary>
/// <remarks>
/// <para>Restart after a crash: STORE/run/mounts.json lists the mounts and survives only an unclean stop. At start,
/// the mounter's FUSE mount is set up first, which lazily unmounts the dead daemon's file systems, detaches its loop
/// devices and removes its stale FUSE mount; then each recorded mount is made again (unless
/// <see cref="DaemonOptions.Remount"/> is false). Data is safe: what a dead daemon had acknowledged (fsync,
/// sync) was flushed to the layer's VHDX file, whose log is replayed when the layer opens again.</para>
/// <para>Each mount operation rewrites the state file after it, under a gate held for the rewrite only (never across
/// the mounter's kernel calls), with the mounts as they are at that moment, so the newest rewrite is the newest
/// state.</para>
/// </remarks>
public sealed class StoreService : IHostedService, IAsyncDisposable
{
    private const int StaleProbeAttempts = 10;
    private readonly DaemonOptions _options;
    private readonly ILogger<StoreService> _logger;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private DaemonLock? _lock;
    private LayerStore? _store;
    private LayerMounter? _mounter;
    private bool _stopped;
    private bool _recovered;

    /// <summary>Created by the host.</summary>
    public StoreService(IOptions<DaemonOptions> options, ILogger<StoreService> logger, IHostApplicationLifetime lifetime)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _logger = logger;
        _lifetime = lifetime;
        Root = Path.GetFullPath(_options.Root);
    }

    /// <summary>The store directory.</summary>
    public string Root { get; }

    /// <summary>The open store; valid between start and stop.</summary>
    public LayerStore Store => _store ?? throw new InvalidOperationException("The daemon's store is not open.");

    /// <summary>When the daemon became ready.</summary>
    public DateTimeOffset StartedAt { get; private set; }

    /// <summary>How many mounts were made again at start.</summary>
    public int Recovered { get; private set; }

    /// <inheritdoc/>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // The store first: the lock file lives in it, and opening refuses a non-empty directory that is no store.
        _store = await LayerStore.OpenAsync(Root, create: true, cancellationToken).ConfigureAwait(false);
        try
        {
            _lock = DaemonLock.Acquire(Root);
            foreach (ReconcileAction action in _store.Reconciliation)
            {
                Log.Reconciled(_logger, Root, action.ToString());
            }

            // We hold the lock, so no daemon of this store serves the socket: it is a dead one's.
            string socket = AdminEndpoint.SocketPath(Root);
            if (File.Exists(socket))
            {
                File.Delete(socket);
                Log.StaleSocketRemoved(_logger, socket);
            }

            _mounter = new LayerMounter(_store);
            await RecoverAsync(cancellationToken).ConfigureAwait(false);
            _recovered = true;
        }
        catch
        {
            await ShutdownAsync().ConfigureAwait(false);
            throw;
        }

        _lifetime.ApplicationStarted.Register(OnStarted);
        _lifetime.ApplicationStopping.Register(() => Notify("STOPPING=1"));
    }

    /// <inheritdoc/>
    public Task StopAsync(CancellationToken cancellationToken) => ShutdownAsync();

    /// <summary>Disposing stops too (the host disposes services even when start failed half way).</summary>
    public async ValueTask DisposeAsync()
    {
        await ShutdownAsync().ConfigureAwait(false);
        _gate.Dispose();
    }

    /// <summary>Mounts <paramref name="layer"/> at <paramref name="directory"/>, or counts one more reference.
    /// <paramref name="privileges"/> says whether set-user-ID bits and device nodes take effect there (an admin's
    /// mount at a directory of their own: none; a container's root file system: all).</summary>
    public async Task<MountJson> MountAsync(string layer, string directory, bool readOnly, MountPrivileges privileges, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(directory);
        if (!Path.IsPathFullyQualified(directory))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"{directory}: the mount directory must be an absolute path.");
        }

        // The mounter serialises what needs it; the gate is not held across its kernel calls, only the state file's
        // rewrite, which records the mounts as they are then (so the last rewrite is always the newest state).
        LayerMounter mounter = ActiveMounter();
        MountInfo info = await mounter.MountAsync(layer, directory, readOnly, privileges, ct).ConfigureAwait(false);
        await RecordAsync(mounter).ConfigureAwait(false);
        MountJson json = ToJson(info);
        Log.Mounted(_logger, info.LayerId, info.Directory, info.LoopDevice, json.Options(), info.References);
        return json;
    }

    /// <summary>Drops one reference to the mount at <paramref name="directory"/>; returns the references left.</summary>
    public async Task<int> UnmountAsync(string directory, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Path.IsPathFullyQualified(directory))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"{directory}: the mount directory must be an absolute path.");
        }

        LayerMounter mounter = ActiveMounter();
        await mounter.UnmountAsync(directory, ct).ConfigureAwait(false);
        await RecordAsync(mounter).ConfigureAwait(false);
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        int left = mounter.List().FirstOrDefault(m => m.Directory == full)?.References ?? 0;
        Log.Unmounted(_logger, full, left);
        return left;
    }

    /// <summary>The mounts, oldest first.</summary>
    public IReadOnlyList<MountJson> List() => [.. ActiveMounter().List().Select(ToJson)];

    /// <summary>The store's mounter; valid between start and stop. Mounts that must survive a daemon restart go
    /// through <see cref="MountAsync"/>, which records them.</summary>
    public LayerMounter Mounter => ActiveMounter();

    /// <summary>The id of the store's base file system layer of <paramref name="capacity"/> bytes, made now if there is
    /// none (<see cref="BaseFilesystem.EnsureAsync(LayerStore, LayerMounter, string, long, CancellationToken)"/>).</summary>
    public async Task<string> EnsureBaseFilesystemAsync(long capacity, CancellationToken ct)
    {
        Layer layer = await BaseFilesystem.EnsureAsync(Store, ActiveMounter(), BaseFilesystem.LayerIdFor(capacity), capacity, ct).ConfigureAwait(false);
        return layer.Id;
    }

    /// <summary>Applies a layer tar to writable layer <paramref name="layer"/> (<see cref="LayerContent.ApplyTarAsync"/>).</summary>
    public Task<long> ApplyTarAsync(string layer, Stream tar, CancellationToken ct) => LayerContent.ApplyTarAsync(ActiveMounter(), layer, tar, ct);

    /// <summary>What <paramref name="layer"/> changed relative to its parent (<see cref="LayerContent.ChangesAsync"/>).</summary>
    public Task<IReadOnlyList<LayerChange>> ChangesAsync(string layer, CancellationToken ct) => LayerContent.ChangesAsync(ActiveMounter(), layer, ct);

    /// <summary>Bytes of file content <paramref name="layer"/> added or modified (<see cref="LayerContent.DiffSizeAsync"/>).</summary>
    public Task<long> DiffSizeAsync(string layer, CancellationToken ct) => LayerContent.DiffSizeAsync(ActiveMounter(), layer, ct);

    /// <summary>Writes the layer tar of <paramref name="layer"/>'s differences from its parent
    /// (<see cref="LayerContent.DiffAsync"/>).</summary>
    public Task<IReadOnlyList<LayerChange>> DiffAsync(string layer, Stream output, CancellationToken ct) => LayerContent.DiffAsync(ActiveMounter(), layer, output, ct);

    /// <summary>Mounts <paramref name="layer"/> and its ancestor <paramref name="baseLayer"/> (null: an empty tree)
    /// read-only for a comparison (<see cref="LayerComparison.OpenAsync"/>); dispose it to unmount.</summary>
    public Task<LayerComparison> OpenComparisonAsync(string layer, string? baseLayer, CancellationToken ct) =>
        LayerComparison.OpenAsync(ActiveMounter(), layer, baseLayer, ct);

    private LayerMounter ActiveMounter() =>
        _mounter is { } mounter && !_stopped ? mounter : throw new BlockDriverException(ErrorKind.Unavailable, $"the daemon for {Root} is stopping.");

    private static MountJson ToJson(MountInfo m) => new(m.LayerId, m.Directory, m.LoopDevice, m.FuseFile, m.ReadOnly, m.References)
    {
        SetUid = m.Privileges.HasFlag(MountPrivileges.SetUid),
        Devices = m.Privileges.HasFlag(MountPrivileges.Devices),
    };

    // Rewrites the state file with the mounts as they are now, unless the daemon is stopping (its stop writes or
    // removes the file itself).
    private async Task RecordAsync(LayerMounter mounter)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (!_stopped)
            {
                SaveState(mounter);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    // The temporary mounts of layer content operations (STORE/mnt/.tmp-*) are not recorded: they are not remade
    // after a crash, and the mounter's start cleans up what they left.
    private void SaveState(LayerMounter mounter)
    {
        string temporary = Path.Combine(Store.Paths.Mounts, ".tmp-");
        MountStateFile.Write(AdminEndpoint.StatePath(Root),
            mounter.List().Where(m => !m.Directory.StartsWith(temporary, StringComparison.Ordinal)).Select(ToJson));
    }

    private async Task RecoverAsync(CancellationToken ct)
    {
        LayerMounter mounter = _mounter!;
        string statePath = AdminEndpoint.StatePath(Root);
        IReadOnlyList<MountJson>? recorded = MountStateFile.Read(statePath);
        if (recorded is null)
        {
            return;
        }

        Log.Recovering(_logger, Root, recorded.Count);

        // Lazily unmounts the file systems the dead daemon left on its loop devices, detaches them, and replaces
        // its stale FUSE mount with ours.
        // Right after a crash the kernel may still answer a stat of the dead FUSE mount from its attribute cache
        // (valid for about a second), which looks like a live server: retry until that has expired.
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await mounter.StartAsync(ct).ConfigureAwait(false);
                break;
            }
            catch (BlockDriverException ex) when (ex.Kind == ErrorKind.InUse && attempt < StaleProbeAttempts)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500), ct).ConfigureAwait(false);
            }
        }

        foreach (string device in mounter.HeldStaleDevices)
        {
            Log.StaleDeviceHeld(_logger, device);
        }

        foreach (MountJson mount in recorded)
        {
            if (!_options.Remount)
            {
                Log.RemountSkipped(_logger, mount.Layer, mount.Directory);
                continue;
            }

            try
            {
                for (int i = 0; i < Math.Max(1, mount.References); i++)
                {
                    await mounter.MountAsync(mount.Layer, mount.Directory, mount.ReadOnly, mount.Privileges, ct).ConfigureAwait(false);
                }

                Recovered++;
                Log.Remounted(_logger, mount.Layer, mount.Directory, Math.Max(1, mount.References));
            }
            catch (BlockDriverException ex)
            {
                // One layer that cannot come back (removed meanwhile, directory taken) does not keep the others out.
                Log.RemountFailed(_logger, mount.Layer, mount.Directory, ex.Message);
            }
        }

        if (mounter.List().Count > 0)
        {
            SaveState(mounter);
        }
        else
        {
            MountStateFile.Delete(statePath);
        }
    }

    private void OnStarted()
    {
        // Kestrel creates the socket with the umask's mode; the admin API is root's only.
        string socket = AdminEndpoint.SocketPath(Root);
        File.SetUnixFileMode(socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        StartedAt = DateTimeOffset.UtcNow;
        Log.Ready(_logger, Root, socket, Environment.ProcessId);
        Notify($"READY=1\nSTATUS=serving {Root}\nMAINPID={Environment.ProcessId}");
    }

    private void Notify(string state)
    {
        if (SystemdNotifier.Notify(state))
        {
            Log.Notified(_logger, state.Replace('\n', ' '));
        }
    }

    // Unmounts everything, then closes the store and gives up the lock. Runs once; a failure to unmount keeps the
    // state file (with what is still mounted) for the next start, and is thrown so the process exits non-zero.
    private async Task ShutdownAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
            Exception? failure = null;
            if (_mounter is not null)
            {
                Log.Stopping(_logger, Root, _mounter.List().Count);
                try
                {
                    await _mounter.DisposeAsync().ConfigureAwait(false);

                    // A start that failed while recovering keeps the record of the dead daemon's mounts.
                    if (_recovered)
                    {
                        MountStateFile.Delete(AdminEndpoint.StatePath(Root));
                    }
                }
                catch (Exception ex)
                {
                    failure = ex;
                    Log.StopFailed(_logger, ex, Root);
                    SaveState(_mounter);
                }
            }

            if (_store is not null)
            {
                await _store.DisposeAsync().ConfigureAwait(false);
            }

            bool held = _lock is not null;
            if (_lock is not null)
            {
                // Kestrel has stopped listening (it stops first); the socket file would only look like a daemon.
                File.Delete(AdminEndpoint.SocketPath(Root));
                _lock.Dispose();
                _lock = null;
            }

            if (failure is not null)
            {
                throw failure;
            }

            if (held)
            {
                Log.Stopped(_logger, Root);
            }
        }
        finally
        {
            _gate.Release();
        }
    }
}
