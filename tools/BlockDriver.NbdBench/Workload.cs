namespace BlockDriver.NbdBench;

/// <summary>One fio job: access pattern and block size.</summary>
internal sealed record Workload(string Name, string ReadWrite, string BlockSize, int IoDepth)
{
    public static readonly Workload[] All =
    [
        new("seq-read-1M", "read", "1M", 8),
        new("seq-write-1M", "write", "1M", 8),
        new("rand-read-4K", "randread", "4k", 32),
        new("rand-write-4K", "randwrite", "4k", 32),
    ];

    public bool IsWrite => ReadWrite.Contains("write", StringComparison.Ordinal);
}
