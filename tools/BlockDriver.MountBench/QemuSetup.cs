using System.Globalization;

namespace BlockDriver.MountBench;

/// <summary>Baseline 2: a qcow2 chain (64 KiB clusters, qemu-img's default) served by qemu-nbd, mounted through
/// nbdfuse and a loop device. The base is the raw baseline's image converted, so it holds the same ext4 and the
/// same bytes; each further image layer adds one small file, as the blockdriver chain's do. Each run mounts a fresh
/// top qcow2 over the image's top layer.</summary>
internal sealed class QemuSetup(string work, string imageTop, int depth) : Setup("qemu-nbd", depth)
{
    /// <summary>The image chain of <paramref name="depth"/> layers: base.qcow2 converted from
    /// <paramref name="rawFile"/> (before any fio run wrote to it), then image-2..image-depth.qcow2.</summary>
    public static async Task<IReadOnlyList<string>> CreateChainAsync(string work, string rawFile, int depth, CancellationToken ct)
    {
        string directory = Path.Combine(work, "mnt-qemu");
        var layers = new List<string> { Path.Combine(work, "image-1.qcow2") };
        await Shell.RunAsync("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", rawFile, layers[0]], ct).ConfigureAwait(false);
        for (int layer = 2; layer <= depth; layer++)
        {
            string file = Path.Combine(work, $"image-{layer}.qcow2");
            await Shell.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", layers[^1], "-F", "qcow2", file], ct).ConfigureAwait(false);
            QemuStack stack = await QemuStack.StartAsync(file, work, directory, ct).ConfigureAwait(false);
            await using (stack.ConfigureAwait(false))
            {
                await TestData.WriteChangeAsync(stack.Mount.Directory, layer, ct).ConfigureAwait(false);
            }

            layers.Add(file);
        }

        return layers;
    }

    /// <summary>A new empty qcow2 over <paramref name="parent"/>.</summary>
    public static async Task<string> CreateTopAsync(string parent, string path, CancellationToken ct)
    {
        File.Delete(path);
        await Shell.RunAsync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", parent, "-F", "qcow2", path], ct).ConfigureAwait(false);
        return path;
    }

    public override async Task<Session> OpenAsync(int run, CancellationToken ct)
    {
        string top = await CreateTopAsync(imageTop, Path.Combine(work, string.Create(CultureInfo.InvariantCulture, $"container-d{Depth}-r{run}.qcow2")), ct).ConfigureAwait(false);
        QemuStack stack;
        try
        {
            stack = await QemuStack.StartAsync(top, work, Path.Combine(work, "mnt-qemu"), ct).ConfigureAwait(false);
        }
        catch
        {
            File.Delete(top);
            throw;
        }

        return new Session(stack.Mount.Directory, stack.ServerPids, async () =>
        {
            await stack.DisposeAsync().ConfigureAwait(false);
            File.Delete(top);
        });
    }
}
