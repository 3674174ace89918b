namespace BlockDriver.Bench;

/// <summary>One access pattern: sequential requests tile the whole device in order; random requests go to
/// seeded offsets aligned to their size. Timed writes end with the device's FlushAsync.</summary>
internal sealed record Workload(string Name, bool IsWrite, bool IsRandom, int IoSize)
{
    public const int SequentialIoSize = 1024 * 1024;
    public const int RandomIoSize = 4096;

    public static readonly Workload SequentialRead = new("seq read 1M", IsWrite: false, IsRandom: false, SequentialIoSize);
    public static readonly Workload SequentialWrite = new("seq write 1M", IsWrite: true, IsRandom: false, SequentialIoSize);
    public static readonly Workload RandomRead = new("rand read 4K", IsWrite: false, IsRandom: true, RandomIoSize);
    public static readonly Workload RandomWrite = new("rand write 4K", IsWrite: true, IsRandom: true, RandomIoSize);

    public static IReadOnlyList<Workload> All { get; } = [SequentialRead, SequentialWrite, RandomRead, RandomWrite];
}
