namespace BlockDriver.MountBench;

/// <summary>One fio job: access pattern and block size. Order matters: the reads first (everything comes from the
/// image layers), then the random writes (first writes into a fresh container layer: copy-on-write), then the
/// sequential writes.</summary>
internal sealed record Workload(string Name, string ReadWrite, string BlockSize)
{
    public static readonly Workload[] All =
    [
        new("seq-read-1M", "read", "1M"),
        new("rand-read-4K", "randread", "4k"),
        new("rand-write-4K", "randwrite", "4k"),
        new("seq-write-1M", "write", "1M"),
    ];

    public bool IsWrite => ReadWrite.Contains("write", StringComparison.Ordinal);
}
