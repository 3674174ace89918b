using System.Globalization;

namespace BlockDriver.MountBench;

/// <summary>Our path: a container layer over an image chain of the blockdriver store, mounted by the daemon
/// (<c>blockdriver mount</c>: FUSE file → loop device with direct I/O → ext4). Each run mounts a fresh container
/// layer and removes it afterwards.</summary>
internal sealed class BlockDriverSetup(BlockDriverDaemon daemon, string mountDirectory, string imageTop, int depth) : Setup("blockdriver", depth)
{
    /// <summary>The image chain of <paramref name="depth"/> sealed layers image-1..image-depth: image-1 is a child of
    /// the store's base ext4 layer holding the image's files, each further one adds one small file.</summary>
    public static async Task<IReadOnlyList<string>> CreateChainAsync(BlockDriverDaemon daemon, string directory, BenchOptions options, int depth, CancellationToken ct)
    {
        var layers = new List<string>();
        for (int layer = 1; layer <= depth; layer++)
        {
            string id = $"image-{layer}";
            _ = layer == 1
                ? await daemon.CliAsync(ct, "layer", "create", "--size", BenchOptions.FormatSize(options.Capacity), "--id", id).ConfigureAwait(false)
                : await daemon.CliAsync(ct, "layer", "create", "--parent", layers[^1], "--kind", "image", "--id", id).ConfigureAwait(false);
            await daemon.CliAsync(ct, "mount", id, directory).ConfigureAwait(false);
            try
            {
                if (layer == 1)
                {
                    await TestData.WriteImageFilesAsync(directory, options, ct).ConfigureAwait(false);
                }
                else
                {
                    await TestData.WriteChangeAsync(directory, layer, ct).ConfigureAwait(false);
                }
            }
            finally
            {
                await daemon.CliAsync(CancellationToken.None, "umount", directory).ConfigureAwait(false);
            }

            await daemon.CliAsync(ct, "layer", "seal", id).ConfigureAwait(false);
            layers.Add(id);
        }

        return layers;
    }

    /// <summary>Mounts a new container layer <paramref name="id"/> over <paramref name="parent"/> at
    /// <paramref name="directory"/>; disposing the session unmounts and removes it.</summary>
    public static async Task<Session> OpenContainerAsync(BlockDriverDaemon daemon, string parent, string id, string directory, CancellationToken ct)
    {
        await daemon.CliAsync(ct, "layer", "create", "--parent", parent, "--id", id).ConfigureAwait(false);
        try
        {
            await daemon.CliAsync(ct, "mount", id, directory).ConfigureAwait(false);
        }
        catch
        {
            await daemon.CliAsync(CancellationToken.None, "layer", "rm", id).ConfigureAwait(false);
            throw;
        }

        return new Session(directory, [daemon.Pid], async () =>
        {
            await daemon.CliAsync(CancellationToken.None, "umount", directory).ConfigureAwait(false);
            await daemon.CliAsync(CancellationToken.None, "layer", "rm", id).ConfigureAwait(false);
        });
    }

    public override Task<Session> OpenAsync(int run, CancellationToken ct) =>
        OpenContainerAsync(daemon, imageTop, string.Create(CultureInfo.InvariantCulture, $"container-d{Depth}-r{run}"), mountDirectory, ct);
}
