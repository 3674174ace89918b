namespace BlockDriver.MountBench;

/// <summary>The files every setup holds, byte for byte: fio's file and the copy-up test's large file, filled with a
/// seeded pseudo-random stream (incompressible, no zero runs for anyone to skip), and the small per-layer change
/// files of the deep chains.</summary>
internal static class TestData
{
    public const string FioFile = "fio.dat";
    public const string CopyUpFile = "big.dat";
    private const int Chunk = 1 << 20;

    /// <summary>Writes both files into <paramref name="directory"/> and fsyncs them.</summary>
    public static async Task WriteImageFilesAsync(string directory, BenchOptions options, CancellationToken ct)
    {
        await WriteFileAsync(Path.Combine(directory, FioFile), options.Size, seed: 1, ct).ConfigureAwait(false);
        await WriteFileAsync(Path.Combine(directory, CopyUpFile), options.CopyUpSize, seed: 2, ct).ConfigureAwait(false);
    }

    public static async Task WriteFileAsync(string path, long length, int seed, CancellationToken ct)
    {
        var random = new Random(seed);
        byte[] buffer = new byte[Chunk];
        var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0);
        await using (file.ConfigureAwait(false))
        {
            for (long offset = 0; offset < length; offset += Chunk)
            {
                random.NextBytes(buffer);
                await file.WriteAsync(buffer.AsMemory(0, (int)Math.Min(Chunk, length - offset)), ct).ConfigureAwait(false);
            }

            file.Flush(flushToDisk: true);
        }
    }

    /// <summary>The small change layer <paramref name="layer"/> of a deep chain makes: a new 4 KiB file.</summary>
    public static async Task WriteChangeAsync(string directory, int layer, CancellationToken ct)
    {
        string path = Path.Combine(directory, $"change-{layer}.txt");
        string line = $"layer {layer}\n";
        await File.WriteAllTextAsync(path, string.Concat(Enumerable.Repeat(line, 4096 / line.Length + 1))[..4096], ct).ConfigureAwait(false);
        await Shell.RunAsync("sync", ["-f", path], ct).ConfigureAwait(false);
    }
}
