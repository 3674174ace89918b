using BlockDriver.Containerd.Api;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace BlockDriver.Containerd.Tests;

/// <summary>One daemon for a test class; each test uses its own snapshotter name, so key spaces do not meet.</summary>
public sealed class SnapshotterFixture : IAsyncLifetime
{
    internal SnapshotterDaemon Daemon { get; } = new();

    public Task InitializeAsync()
    {
        Daemon.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (Daemon.Daemon.HasExited)
        {
            await Daemon.DisposeAsync();
            return;
        }

        await Daemon.StopAsync();
        IReadOnlyList<string> left = Daemon.Leftovers();
        await Daemon.DisposeAsync();
        Assert.True(left.Count == 0, "left behind after the daemon stopped:\n" + string.Join('\n', left));
    }
}

/// <summary>Calls of one snapshotter name, and mounting its mounts with mount(8) as containerd would.</summary>
internal sealed class SnapshotterClient(SnapshotterDaemon daemon, string name)
{
    private readonly List<string> _mounted = [];

    public string Name { get; } = name;

    private Snapshots.SnapshotsClient C => daemon.Client;

    public static Dictionary<string, string> GcRoot() => new() { ["containerd.io/gc.root"] = DateTime.UtcNow.ToString("O") };

    public async Task<IReadOnlyList<Api.Mount>> PrepareAsync(string key, string parent = "", IDictionary<string, string>? labels = null)
    {
        var request = new PrepareSnapshotRequest { Snapshotter = Name, Key = key, Parent = parent };
        request.Labels.Add(labels ?? GcRoot());
        return (await C.PrepareAsync(request)).Mounts;
    }

    public async Task<IReadOnlyList<Api.Mount>> ViewAsync(string key, string parent = "", IDictionary<string, string>? labels = null)
    {
        var request = new ViewSnapshotRequest { Snapshotter = Name, Key = key, Parent = parent };
        request.Labels.Add(labels ?? GcRoot());
        return (await C.ViewAsync(request)).Mounts;
    }

    public async Task<IReadOnlyList<Api.Mount>> MountsAsync(string key) =>
        (await C.MountsAsync(new MountsRequest { Snapshotter = Name, Key = key })).Mounts;

    public async Task CommitAsync(string name, string key, IDictionary<string, string>? labels = null)
    {
        var request = new CommitSnapshotRequest { Snapshotter = Name, Name = name, Key = key };
        request.Labels.Add(labels ?? GcRoot());
        await C.CommitAsync(request);
    }

    public async Task RemoveAsync(string key) => await C.RemoveAsync(new RemoveSnapshotRequest { Snapshotter = Name, Key = key });

    public async Task<Info> StatAsync(string key) => (await C.StatAsync(new StatSnapshotRequest { Snapshotter = Name, Key = key })).Info;

    public async Task<Info> UpdateAsync(Info info, params string[] paths)
    {
        var request = new UpdateSnapshotRequest { Snapshotter = Name, Info = info };
        if (paths.Length > 0)
        {
            request.UpdateMask = new FieldMask();
            request.UpdateMask.Paths.Add(paths);
        }

        return (await C.UpdateAsync(request)).Info;
    }

    public async Task<List<Info>> ListAsync(params string[] filters)
    {
        var request = new ListSnapshotsRequest { Snapshotter = Name };
        request.Filters.Add(filters);
        var infos = new List<Info>();
        using AsyncServerStreamingCall<ListSnapshotsResponse> call = C.List(request);
        await foreach (ListSnapshotsResponse response in call.ResponseStream.ReadAllAsync())
        {
            infos.AddRange(response.Info);
        }

        return infos;
    }

    public async Task<UsageResponse> UsageAsync(string key) => await C.UsageAsync(new UsageRequest { Snapshotter = Name, Key = key });

    public async Task CleanupAsync() => await C.CleanupAsync(new CleanupRequest { Snapshotter = Name });

    /// <summary>mount -t TYPE -o OPTIONS SOURCE DIR, as containerd's mount.All does for one mount.</summary>
    public async Task<string> MountAsync(IReadOnlyList<Api.Mount> mounts, string dirName)
    {
        Api.Mount m = Assert.Single(mounts);
        string dir = daemon.Dir(Name + "-" + dirName);
        Directory.CreateDirectory(dir);
        await SnapshotterDaemon.Run("mount", "-t", m.Type, "-o", string.Join(',', m.Options), m.Source, dir);
        _mounted.Add(dir);
        return dir;
    }

    public async Task UnmountAsync(string dir)
    {
        await SnapshotterDaemon.Run("umount", dir);
        _mounted.Remove(dir);
    }

    /// <summary>Unmounts what a failed test left mounted.</summary>
    public async Task UnmountAllAsync()
    {
        foreach (string dir in _mounted.ToArray())
        {
            await SnapshotterDaemon.Run("umount", "-l", dir);
            _mounted.Remove(dir);
        }
    }
}
