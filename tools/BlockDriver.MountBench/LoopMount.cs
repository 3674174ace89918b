using BlockDriver.Mount;

namespace BlockDriver.MountBench;

/// <summary>ext4 on a loop device over a file: <c>losetup --direct-io=on --sector-size 4096</c> (what the mounter
/// configures for layers), optionally mkfs.ext4 with the options the store's base file system layer is made with,
/// then mount. Disposing unmounts and detaches, whatever state the setup reached.</summary>
internal sealed class LoopMount : IAsyncDisposable
{
    private string? _loop;
    private bool _mounted;

    private LoopMount(string directory)
    {
        Directory = directory;
    }

    public string Directory { get; }

    public string Device => _loop ?? throw new InvalidOperationException("Not attached.");

    public static async Task<LoopMount> StartAsync(string backingFile, string directory, bool format, CancellationToken ct)
    {
        System.IO.Directory.CreateDirectory(directory);
        var mount = new LoopMount(directory);
        try
        {
            mount._loop = (await Shell.RunAsync("losetup", ["--find", "--show", "--direct-io=on", "--sector-size", "4096", backingFile], ct).ConfigureAwait(false)).Trim();
            if (format)
            {
                // As BaseFilesystem makes the store's base layer.
                await Shell.RunAsync("mkfs.ext4", ["-q", "-F", "-L", "blockdriver", "-E", "lazy_itable_init=0,lazy_journal_init=0,discard", mount._loop], ct).ConfigureAwait(false);
            }

            await Shell.RunAsync("mount", ["-t", "ext4", mount._loop, directory], ct).ConfigureAwait(false);
            mount._mounted = true;
            return mount;
        }
        catch
        {
            await mount.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_mounted)
        {
            await Shell.RunAsync("umount", Directory).ConfigureAwait(false);
            _mounted = false;
        }

        if (_loop is { } loop)
        {
            _loop = null;
            // Waits until the kernel has let go of the backing file, so the FUSE mount under it can go next.
            LoopDevice.DetachDevice(loop, TimeSpan.FromSeconds(30));
        }
    }
}
