using BlockDriver.Core;
using BlockDriver.Interop;
using BlockDriver.Testing;

namespace BlockDriver.Mount.Tests;

/// <summary>A store in a temp dir with its <see cref="LayerMounter"/> and a 256 MiB base file system layer. Disposing
/// disposes the mounter, then undoes by hand whatever a failed test or a failed disposal left (file system mounts
/// under the temp dir, loop devices on its files, the FUSE mount), and deletes the directory.</summary>
internal sealed class MounterTestStore : IAsyncDisposable
{
    public const long Capacity = 256L << 20;
    private readonly TempDirectory _temp;

    private MounterTestStore(TempDirectory temp, LayerStore store)
    {
        _temp = temp;
        Store = store;
        Mounter = new LayerMounter(store);
    }

    public LayerStore Store { get; }

    public LayerMounter Mounter { get; }

    public string Root => _temp.FullName;

    public static async Task<MounterTestStore> CreateAsync()
    {
        var temp = new TempDirectory(MountTestCollection.TempPrefix);
        try
        {
            LayerStore store = await LayerStore.OpenAsync(temp.GetFilePath("store"), create: true);
            return new MounterTestStore(temp, store);
        }
        catch
        {
            temp.Dispose();
            throw;
        }
    }

    /// <summary>A directory for a mount point (not created).</summary>
    public string Dir(string name) => _temp.GetFilePath(name);

    /// <summary>Allocated bytes of every layer file.</summary>
    public long LayerFilesSize() =>
        Directory.EnumerateFiles(Store.Paths.Layers).Sum(f => SparseFile.AllocatedBytes(f));

    public async ValueTask DisposeAsync()
    {
        var failures = new List<Exception>();
        async Task Step(Func<Task> step)
        {
            try
            {
                await step();
            }
            catch (Exception ex)
            {
                failures.Add(ex);
            }
        }

        await Step(async () => await Mounter.DisposeAsync());
        await Step(() =>
        {
            HostLeaks.RemoveOrThrow(_temp.FullName);
            return Task.CompletedTask;
        });
        await Step(async () => await Store.DisposeAsync());
        await Step(() =>
        {
            _temp.Dispose();
            return Task.CompletedTask;
        });
        if (failures.Count > 0)
        {
            throw new AggregateException("Cleaning up a mounter test store failed.", failures);
        }
    }

    public static async Task Run(string program, params string[] args)
    {
        ProcessResult result = await ChildProcess.RunAsync(program, args, "/");
        Assert.True(result.ExitCode == 0, $"{program} {string.Join(' ', args)}: {result}");
    }
}
