using BlockDriver.Interop;
namespace BlockDriver.Fuse.Tests;

/// <summary>Fails the test run when, after every test of the collection, a mount (FUSE or other) or a loop device
/// still refers to a directory these tests created.</summary>
public sealed class LeakCheck : IDisposable
{
    private static readonly string Marker = $"/blockdriver-{FuseTestCollection.TempPrefix}-";

    public static IReadOnlyList<string> FindLeaks()
    {
        var leaks = new List<string>();
        leaks.AddRange(MountInfoEntry.ReadAll()
            .Where(e => e.MountPoint.Contains(Marker, StringComparison.Ordinal))
            .Select(e => $"mount {e.FileSystemType} at {e.MountPoint}"));
        foreach (string device in Directory.GetDirectories("/sys/block", "loop*"))
        {
            string backing = Path.Combine(device, "loop", "backing_file");
            string file = File.Exists(backing) ? File.ReadAllText(backing).Trim() : "";
            if (file.Contains(Marker, StringComparison.Ordinal))
            {
                leaks.Add($"{Path.GetFileName(device)} -> {file}");
            }
        }

        return leaks;
    }

    public void Dispose()
    {
        IReadOnlyList<string> leaks = FindLeaks();
        if (leaks.Count > 0)
        {
            throw new InvalidOperationException("The FUSE tests leaked: " + string.Join("; ", leaks));
        }
    }
}
