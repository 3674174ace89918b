namespace BlockDriver.Cli.Images;

/// <summary>A file built under a temporary name in its destination's directory and renamed over the destination
/// only when complete, so that a failed or interrupted command leaves the destination as it was. The same
/// directory matters twice: rename(2) is atomic only within one file system, and a differencing VHDX records its
/// parent's path relative to its own directory.</summary>
internal sealed class ReplacementFile : IDisposable
{
    private bool _committed;

    /// <summary>Chooses the temporary name; creates nothing.</summary>
    public ReplacementFile(string destination)
    {
        Destination = destination;
        string directory = Path.GetDirectoryName(Path.GetFullPath(destination))!;
        TempPath = Path.Combine(directory, $".{Path.GetFileName(destination)}.{Guid.NewGuid():N}.tmp");
    }

    /// <summary>The final path.</summary>
    public string Destination { get; }

    /// <summary>Where to build the file; it must be closed before <see cref="Commit"/>.</summary>
    public string TempPath { get; }

    /// <summary>Renames the finished file over <see cref="Destination"/>.</summary>
    public void Commit()
    {
        File.Move(TempPath, Destination, overwrite: true);
        _committed = true;
    }

    /// <summary>Deletes the temporary file unless committed. A failure to delete is reported on stderr, not
    /// thrown, so that it does not hide the error that stopped the command.</summary>
    public void Dispose()
    {
        if (_committed)
        {
            return;
        }

        try
        {
            File.Delete(TempPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"blockdriver: warning: could not remove the temporary file {TempPath}: {e.Message}");
        }
    }
}
