using System.Text.Json;
using BlockDriver.Abstractions;

namespace BlockDriver.Daemon;

/// <summary>STORE/run/mounts.json: the daemon's mounts, replaced atomically (write, fsync, rename) after every
/// change, so that a daemon started after a crash knows what its predecessor had mounted.</summary>
internal static class MountStateFile
{
    /// <summary>The recorded mounts, or null when there is no file (the last daemon stopped cleanly, or none ran).</summary>
    public static IReadOnlyList<MountJson>? Read(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(path), AdminJsonContext.Default.ListMountJson) ?? [];
        }
        catch (JsonException ex)
        {
            throw new BlockDriverException(ErrorKind.Corrupt,
                $"{path} is not a mount list ({ex.Message}); move it away to start without remounting (run 'blockdriver daemon' again after).", ex);
        }
    }

    public static void Write(string path, IEnumerable<MountJson> mounts)
    {
        string temp = path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(stream, mounts.ToList(), AdminJsonContext.Default.ListMountJson);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }

    public static void Delete(string path) => File.Delete(path);
}
