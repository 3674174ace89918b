using System.Security.Cryptography;
using System.Text;

namespace BlockDriver.Testing;

/// <summary>
/// Directories that are slow to make (a debootstrapped rootfs, unpacked Debian packages) made once per machine and
/// reused by every test and every test assembly: under <c>Path.GetTempPath()/blockdriver-test-cache/NAME</c>. Test
/// assemblies run in parallel processes, so making an entry holds an exclusive lock on <c>NAME.lock</c> (an advisory
/// flock, which .NET takes for <see cref="FileShare.None"/>; it also excludes other threads of this process, each
/// opening its own descriptor) and the entry appears whole or not at all: it is made in <c>NAME.tmp-RANDOM</c> and
/// renamed. Leftovers of a maker that died (its temp directory, with any mounts or processes under it) are removed
/// under the lock. Thread safe.
/// </summary>
public static class TestCache
{
    /// <summary>The directory holding every entry.</summary>
    public static string Root { get; } = Path.Combine(Path.GetTempPath(), "blockdriver-test-cache");

    /// <summary>A short stable hash of <paramref name="parts"/> (12 hex digits of SHA-256), for entry names that
    /// change whenever the arguments that made them do.</summary>
    public static string ShortHash(params string[] parts) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\0', parts))))[..12];

    /// <summary>The path of entry <paramref name="name"/>, calling <paramref name="create"/> with an empty
    /// directory to fill when the entry does not exist yet. Waits up to <paramref name="timeout"/> for another maker
    /// (another process) to finish.</summary>
    /// <exception cref="TimeoutException">Another maker held the lock past <paramref name="timeout"/>.</exception>
    public static async Task<string> GetOrCreateAsync(string name, Func<string, CancellationToken, Task> create,
        Action<string> log, TimeSpan timeout, CancellationToken ct = default)
    {
        string entry = Path.Combine(Root, name);
        if (Directory.Exists(entry))
        {
            return entry;
        }

        Directory.CreateDirectory(Root);
        using FileStream lockFile = await LockAsync(Path.Combine(Root, name + ".lock"), name, log, timeout, ct);
        if (Directory.Exists(entry))
        {
            // Another process made it while this one waited.
            return entry;
        }

        foreach (string stale in Directory.EnumerateDirectories(Root, name + ".tmp-*"))
        {
            log($"removing {stale}, left by a maker that did not finish");
            HostLeaks.RemoveOrThrow(stale);
            Directory.Delete(stale, recursive: true);
        }

        string temp = Path.Combine(Root, $"{name}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            await create(temp, ct);
            Directory.Move(temp, entry);
            log($"made {entry}");
            return entry;
        }
        finally
        {
            if (Directory.Exists(temp))
            {
                // create failed or was cancelled: a debootstrap killed midway may leave /proc and /sys mounted in it.
                HostLeaks.Remove(temp);
                Directory.Delete(temp, recursive: true);
            }
        }
    }

    private static async Task<FileStream> LockAsync(string path, string name, Action<string> log, TimeSpan timeout, CancellationToken ct)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        bool told = false;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                // Held by another maker (flock's EWOULDBLOCK surfaces as IOException).
                if (!told)
                {
                    log($"waiting for another test process to finish making {name}");
                    told = true;
                }

                await Task.Delay(TimeSpan.FromSeconds(1), ct);
            }
            catch (IOException e)
            {
                throw new TimeoutException($"{path} stayed locked for {timeout.TotalMinutes:0} min: another test process is making {name}", e);
            }
        }
    }
}
