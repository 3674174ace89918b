namespace BlockDriver.Testing;

/// <summary>A fresh directory under <see cref="Path.GetTempPath"/> for one test. <see cref="Dispose"/> deletes it
/// with everything inside; suites call it from their xunit teardown, which runs whether or not the test passed.
/// Close files inside it first: the directory cannot go while a device still holds one open.</summary>
public sealed class TempDirectory : IDisposable
{
    private bool _disposed;

    /// <summary>Creates the directory now, named <c>blockdriver-{prefix}-{random}</c>.</summary>
    public TempDirectory(string prefix = "test")
    {
        FullName = Directory.CreateTempSubdirectory($"blockdriver-{prefix}-").FullName;
    }

    /// <summary>Absolute path of the directory.</summary>
    public string FullName { get; }

    /// <summary>The absolute path of <paramref name="name"/> inside the directory; creates nothing.</summary>
    public string GetFilePath(string name) => Path.Combine(FullName, name);

    /// <summary>Deletes the directory and its contents. Idempotent; a directory already gone is not an error.</summary>
    /// <exception cref="IOException">The directory could not be deleted after a retry.</exception>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                if (Directory.Exists(FullName))
                {
                    Directory.Delete(FullName, recursive: true);
                }

                return;
            }
            catch (IOException) when (attempt < 3)
            {
                // A handle closed on another thread (a device disposed concurrently) may still be releasing
                // its file; give it a moment and try again rather than leaking the directory.
                Thread.Sleep(50 * attempt);
            }
        }
    }
}
