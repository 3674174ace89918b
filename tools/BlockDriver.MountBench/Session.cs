namespace BlockDriver.MountBench;

/// <summary>A mounted file system fio runs in for one run of one setup: its directory, the processes serving its I/O
/// (whose CPU time is charged to it) and how to take it down.</summary>
internal sealed class Session(string directory, IReadOnlyList<int> serverPids, Func<ValueTask> close) : IAsyncDisposable
{
    public string Directory { get; } = directory;

    public IReadOnlyList<int> ServerPids { get; } = serverPids;

    public ValueTask DisposeAsync() => close();
}
