using BlockDriver.Core;
using BlockDriver.Mount;
using Xunit.Abstractions;

namespace BlockDriver.Daemon.Tests;

/// <summary>A temp dir holding a store with a 256 MiB base file system layer and a writable container layer "c1" over
/// it (made through the Core API before any daemon starts), plus helpers to run the real <c>blockdriver</c>. Disposing
/// cleans up as <see cref="DaemonTestDirectory"/> does.</summary>
internal sealed class DaemonTestStore : DaemonTestDirectory
{
    public const string TempPrefix = "daemontest";

    private DaemonTestStore(ITestOutputHelper output)
        : base(TempPrefix, output)
    {
    }

    public static async Task<DaemonTestStore> CreateAsync(ITestOutputHelper output)
    {
        var test = new DaemonTestStore(output);
        try
        {
            LayerStore store = await LayerStore.OpenAsync(test.Root, create: true);
            await using (store)
            {
                var mounter = new LayerMounter(store);
                await using (mounter)
                {
                    await BaseFilesystem.EnsureAsync(store, mounter, capacity: 256L << 20);
                }

                await store.CreateAsync(new LayerSpec { Id = "c1", Parent = BaseFilesystem.LayerId, Kind = LayerKind.Container });
            }

            return test;
        }
        catch
        {
            await test.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts <c>blockdriver --root STORE daemon ARGS</c> and waits until it logs that it is ready.</summary>
    public DaemonProcess StartDaemon(IReadOnlyDictionary<string, string>? environment = null, params string[] args) =>
        StartDaemonProcess(args, environment);
}
