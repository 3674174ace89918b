using System.Runtime.InteropServices;
using BlockDriver.Abstractions;
using BlockDriver.Interop;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace BlockDriver.Fuse;

/// <summary>Finds FUSE mounts and cleans the ones a crashed server left behind. A FUSE mount whose server died
/// (every /dev/fuse fd closed) stays in the mount table, and every access to it fails with ENOTCONN
/// ("Transport endpoint is not connected") until someone unmounts it.</summary>
public static class FuseMounts
{
    /// <summary>How long the liveness probe (a stat of the mount point) may take before the server counts as hung.</summary>
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The FUSE mounts ("fuse", "fuse.*") at exactly <paramref name="mountPoint"/>, bottom first.</summary>
    public static IReadOnlyList<MountInfoEntry> FindAt(string mountPoint)
    {
        string full = Normalize(mountPoint);
        return [.. MountInfoEntry.ReadAll().Where(e => e.IsFuse && e.MountPoint == full)];
    }

    /// <summary>Unmounts (lazily, MNT_DETACH) every FUSE mount at <paramref name="mountPoint"/> whose server is
    /// gone, and returns how many it removed. Reads the mount table first, so a healthy directory costs no stat.</summary>
    /// <exception cref="BlockDriverException">InUse when a FUSE mount there is still served (or its server does
    /// not answer within 5 s): that is another live server, and it is left alone.</exception>
    public static async Task<int> CleanupStaleAsync(string mountPoint, ILogger? logger = null, CancellationToken ct = default)
    {
        logger ??= NullLogger.Instance;
        string full = Normalize(mountPoint);
        int removed = 0;

        // Several dead mounts can be stacked on one directory (a daemon that crashed more than once); each lazy
        // unmount exposes the one below. The bound only stops a loop if unmounting silently does nothing.
        for (int round = 0; round < 64; round++)
        {
            IReadOnlyList<MountInfoEntry> mounts = FindAt(full);
            if (mounts.Count == 0)
            {
                return removed;
            }

            MountInfoEntry top = mounts[^1];

            int errno = await ProbeAsync(full, ct).ConfigureAwait(false);
            if (errno is not (Errno.ENOTCONN or Errno.ECONNABORTED))
            {
                string state = errno switch
                {
                    0 => "its server answers",
                    -1 => "its server does not answer",
                    _ => $"stat fails with {Errno.Describe(errno)}",
                };
                throw new BlockDriverException(ErrorKind.InUse,
                    $"{full}: a FUSE mount ({top.FileSystemType}, connection {top.ConnectionId}) is there and {state}; not touching it.");
            }

            if (Libc.Umount2(full, FuseNative.MntDetach) != 0)
            {
                int error = Marshal.GetLastPInvokeError();
                throw new BlockDriverException(ErrorKind.InUse, $"{full}: unmounting the stale FUSE mount failed: {Errno.Describe(error)}.");
            }

            Log.StaleMountCleaned(logger, top.FileSystemType, full);
            removed++;
        }

        throw new BlockDriverException(ErrorKind.InUse, $"{full}: stale FUSE mounts keep reappearing after 64 unmounts.");
    }

    /// <summary>The canonical absolute form mountinfo uses: full path, no trailing slash.</summary>
    internal static string Normalize(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        return full.Length > 1 ? full.TrimEnd('/') : full;
    }

    // statx on the mount point asks the server (GETATTR of its root): 0 = it answered, errno otherwise, -1 = no
    // answer in time. A hung probe keeps one thread-pool thread blocked until the server answers or is aborted.
    private static async Task<int> ProbeAsync(string path, CancellationToken ct)
    {
        Task<int> probe = Task.Run(() => StatErrno(path), CancellationToken.None);
        try
        {
            return await probe.WaitAsync(ProbeTimeout, ct).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return -1;
        }
    }

    private static unsafe int StatErrno(string path)
    {
        // AT_STATX_FORCE_SYNC: ask the server, not the kernel's attribute cache, which answers for a second or so
        // after the server died (a daemon restarted right after kill -9 would take the dead mount for a live one).
        const int AtStatxForceSync = 0x2000;
        byte* buffer = stackalloc byte[FuseNative.StatxStructSize];
        return Libc.Statx(FuseNative.AtFdCwd, path, AtStatxForceSync, FuseNative.StatxTypeAndMode, buffer) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }
}
