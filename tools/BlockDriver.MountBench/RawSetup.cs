namespace BlockDriver.MountBench;

/// <summary>Baseline 1, the path's physical limit: ext4 on a loop device (direct I/O, 4096-byte blocks) over a raw
/// sparse file on the host file system. Runs share the file; the writes simply overwrite it.</summary>
internal sealed class RawSetup(string rawFile, string mountDirectory) : Setup("loop-on-raw", 0)
{
    /// <summary>Makes the raw file: sparse, formatted, holding the image's files.</summary>
    public static async Task<RawSetup> CreateAsync(string work, BenchOptions options, CancellationToken ct)
    {
        string raw = Path.Combine(work, "raw.img");
        string directory = Path.Combine(work, "mnt-raw");
        var file = new FileStream(raw, FileMode.CreateNew, FileAccess.Write);
        await using (file.ConfigureAwait(false))
        {
            file.SetLength(options.Capacity);
        }

        LoopMount mount = await LoopMount.StartAsync(raw, directory, format: true, ct).ConfigureAwait(false);
        await using (mount.ConfigureAwait(false))
        {
            await TestData.WriteImageFilesAsync(directory, options, ct).ConfigureAwait(false);
        }

        return new RawSetup(raw, directory);
    }

    public string RawFile { get; } = rawFile;

    public override async Task<Session> OpenAsync(int run, CancellationToken ct)
    {
        LoopMount mount = await LoopMount.StartAsync(RawFile, mountDirectory, format: false, ct).ConfigureAwait(false);
        return new Session(mount.Directory, [], mount.DisposeAsync);
    }
}
