using BlockDriver.Interop;
using BlockDriver.Mount;

namespace BlockDriver.MountBench;

/// <summary>The last line of cleanup: whatever is still mounted under the work directory, or a loop device on a file
/// in it, after every setup was taken down (a failure midway, Ctrl-C during a setup). Undoes it file systems first,
/// then loop devices, then FUSE mounts, and says what it had to undo.</summary>
internal static class Leftovers
{
    public static async Task<IReadOnlyList<string>> SweepAsync(string work)
    {
        string prefix = work.TrimEnd('/') + "/";
        var found = new List<string>();
        foreach (MountInfoEntry mount in MountInfoEntry.ReadAll().Where(m => Under(m.MountPoint, prefix) && !m.IsFuse).Reverse())
        {
            found.Add($"mount {mount.FileSystemType} at {mount.MountPoint}");
            await Shell.RunAsync("umount", "-l", mount.MountPoint).ConfigureAwait(false);
        }

        foreach ((int index, string backing) in LoopDevice.ListBound().Where(b => Under(b.BackingFile, prefix)))
        {
            found.Add($"/dev/loop{index} -> {backing}");
            LoopDevice.DetachDevice($"/dev/loop{index}", TimeSpan.FromSeconds(30));
        }

        foreach (MountInfoEntry mount in MountInfoEntry.ReadAll().Where(m => Under(m.MountPoint, prefix)).Reverse())
        {
            found.Add($"mount {mount.FileSystemType} at {mount.MountPoint}");
            await Shell.RunAsync("umount", "-l", mount.MountPoint).ConfigureAwait(false);
        }

        return found;
    }

    private static bool Under(string path, string prefix) => path.StartsWith(prefix, StringComparison.Ordinal);
}
