using System.Diagnostics;
using BlockDriver.Abstractions;

namespace BlockDriver.Core.Tests;

/// <summary>Locks between processes: another process holding a layer's lock file (as any opener does) makes the store
/// refuse with its pid; many CLI processes changing one store at once lose nothing.</summary>
public sealed class LockingTests : StoreTestBase
{
    [Fact]
    public async Task A_layer_another_process_has_open_is_refused_with_that_process_pid()
    {
        await SealedBaseAsync();
        await Store.CloneAsync("base", "c");
        string lockFile = Path.Combine(Root, "run", "locks", "c.lock");
        using Process holder = StartLockHolder(lockFile);
        try
        {
            await WaitForLineAsync(holder, "locked");
            await ThrowsAsync(ErrorKind.InUse, () => Store.OpenLayerAsync("c", writable: true), $"in use by pid {holder.Id}");
            await ThrowsAsync(ErrorKind.InUse, () => Store.RemoveAsync("c"), $"in use by pid {holder.Id}");
            await ThrowsAsync(ErrorKind.InUse, () => Store.SnapshotAsync("c"), $"in use by pid {holder.Id}");
            Assert.NotNull(Store.Find("c"));
        }
        finally
        {
            holder.Kill();
            await holder.WaitForExitAsync();
        }

        // The kernel dropped the dead holder's lock.
        await using LayerDevice device = await Store.OpenLayerAsync("c", writable: true);
    }

    [Fact]
    public async Task Concurrent_cli_processes_on_one_store_all_succeed_and_the_catalog_stays_whole()
    {
        await SealedBaseAsync();
        Task<ProcessResult>[] runs = [.. Enumerable.Range(0, 8).Select(i =>
            CliProcess.RunAsync(new Dictionary<string, string>(), "--root", Root, "layer", "clone", "base", "--id", $"c{i}"))];
        ProcessResult[] results = await Task.WhenAll(runs);

        Assert.All(results, r => Assert.True(r.ExitCode == 0, r.ToString()));
        await ReopenStoreAsync();
        Assert.Empty(Store.Reconciliation);
        Assert.Equal(8, Store.Children("base").Count);
        foreach (string child in Store.Children("base"))
        {
            await using LayerDevice device = await Store.OpenLayerAsync(child, writable: true);
        }
    }

    // python3 takes a POSIX write lock on the file (what a writer's lease is) and says so.
    private static Process StartLockHolder(string lockFile)
    {
        string python = ChildProcess.Locate("python3") ?? throw new InvalidOperationException("python3 is needed to hold a lock from another process.");
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("import fcntl,sys,time\nf=open(sys.argv[1],'a+')\nfcntl.lockf(f,fcntl.LOCK_EX)\nprint('locked',flush=True)\ntime.sleep(120)");
        start.ArgumentList.Add(lockFile);
        return Process.Start(start)!;
    }

    private static async Task WaitForLineAsync(Process process, string expected)
    {
        string? line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(expected, line);
    }
}
