namespace BlockDriver.MountBench;

/// <summary>One row group of the table: a way to get a mounted ext4 holding the image's files, fresh for each run
/// (a new container layer or qcow2 top, so each run's writes start from the image).</summary>
internal abstract class Setup(string name, int depth)
{
    /// <summary>"loop-on-raw", "qemu-nbd", "blockdriver".</summary>
    public string Name { get; } = name;

    /// <summary>Image layers under the container; 0 for the raw file.</summary>
    public int Depth { get; } = depth;

    public string Label => Depth == 0 ? Name : $"{Name} d{Depth}";

    public abstract Task<Session> OpenAsync(int run, CancellationToken ct);
}
