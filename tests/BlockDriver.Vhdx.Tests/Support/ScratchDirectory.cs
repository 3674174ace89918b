namespace BlockDriver.Vhdx.Tests.Support;

/// <summary>A per-test temporary directory, deleted with everything in it on <see cref="Dispose"/> (use it with
/// <c>using</c>, so it goes even when the test fails).</summary>
internal sealed class ScratchDirectory : IDisposable
{
    public ScratchDirectory(string prefix = "bd-test")
    {
        FullName = Directory.CreateTempSubdirectory(prefix).FullName;
    }

    /// <summary>The directory's absolute path.</summary>
    public string FullName { get; }

    /// <summary>The absolute path of <paramref name="name"/> inside the directory (not created).</summary>
    public string File(string name) => System.IO.Path.Combine(FullName, name);

    /// <summary>Creates a subdirectory and returns its absolute path.</summary>
    public string Subdirectory(string name) => Directory.CreateDirectory(File(name)).FullName;

    public void Dispose()
    {
        if (Directory.Exists(FullName))
        {
            Directory.Delete(FullName, recursive: true);
        }
    }
}
