using BlockDriver.Interop;

namespace BlockDriver.Mount.Tests;

/// <summary>Fails the run when, after all tests, a mount or a loop device still refers to a test directory.</summary>
public sealed class LeakCheck : IDisposable
{
    private static readonly string Marker = $"/blockdriver-{MountTestCollection.TempPrefix}-";

    public static IReadOnlyList<string> FindLeaks() =>
    [
        .. MountInfoEntry.ReadAll()
            .Where(e => e.MountPoint.Contains(Marker, StringComparison.Ordinal) || e.Source.Contains(Marker, StringComparison.Ordinal))
            .Select(e => $"mount {e.FileSystemType} {e.Source} at {e.MountPoint}"),
        .. LoopDevice.ListBound()
            .Where(b => b.BackingFile.Contains(Marker, StringComparison.Ordinal))
            .Select(b => $"/dev/loop{b.Index} -> {b.BackingFile}"),
    ];

    public void Dispose()
    {
        IReadOnlyList<string> leaks = FindLeaks();
        if (leaks.Count > 0)
        {
            throw new InvalidOperationException("The mount tests leaked: " + string.Join("; ", leaks));
        }
    }
}
