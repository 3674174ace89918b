using System.Globalization;
using BlockDriver.Vhdx;

namespace BlockDriver.NbdBench;

/// <summary>Builds the two equivalent chains: VHDX (ours, written in-process) and qcow2 (written by qemu-io), the
/// same depth with the same bytes in each layer. Layer 0 is filled with 0x40 over its first half; layer i ≥ 1
/// writes 0x40+i over every other MiB of its own 128 MiB region; the top layer is left empty for the writes.</summary>
internal static class Chains
{
    private const int MiB = 1024 * 1024;

    public static async Task<(string Vhdx, string Qcow2)> CreateAsync(string directory, BenchOptions options)
    {
        long size = (long)options.SizeMiB * MiB;
        string? vhdxParent = null;
        string? qcowParent = null;
        for (int layer = 0; layer < options.Depth; layer++)
        {
            string vhdx = Path.Combine(directory, $"layer{layer}.vhdx");
            string qcow = Path.Combine(directory, $"layer{layer}.qcow2");
            if (vhdxParent is null)
            {
                VhdxFile.CreateDynamic(vhdx, size);
                await Shell.RunAsync("qemu-img", "create", "-q", "-f", "qcow2", qcow, size.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
            }
            else
            {
                await VhdxFile.CreateDifferencingAsync(vhdx, vhdxParent).ConfigureAwait(false);
                await Shell.RunAsync("qemu-img", "create", "-q", "-f", "qcow2", "-b", qcowParent!, "-F", "qcow2", qcow).ConfigureAwait(false);
            }

            if (layer < options.Depth - 1)
            {
                List<(long Offset, int Length, byte Value)> writes = Writes(layer, size);
                await WriteVhdxAsync(vhdx, writes).ConfigureAwait(false);
                await WriteQcowAsync(qcow, writes).ConfigureAwait(false);
            }

            vhdxParent = vhdx;
            qcowParent = qcow;
        }

        return (vhdxParent!, qcowParent!);
    }

    private static List<(long Offset, int Length, byte Value)> Writes(int layer, long size)
    {
        var writes = new List<(long, int, byte)>();
        byte value = (byte)(0x40 + layer);
        if (layer == 0)
        {
            for (long offset = 0; offset < size / 2; offset += 16 * MiB)
            {
                writes.Add((offset, 16 * MiB, value));
            }
        }
        else
        {
            long region = (long)layer * 128 * MiB % size;
            for (long offset = region; offset < Math.Min(region + (128L * MiB), size); offset += 2 * MiB)
            {
                writes.Add((offset, MiB, value));
            }
        }

        return writes;
    }

    private static async Task WriteVhdxAsync(string path, List<(long Offset, int Length, byte Value)> writes)
    {
        VhdxDisk disk = VhdxDisk.Open(path);
        await using (disk.ConfigureAwait(false))
        {
            foreach ((long offset, int length, byte value) in writes)
            {
                byte[] data = new byte[length];
                Array.Fill(data, value);
                await disk.WriteAsync(offset, data).ConfigureAwait(false);
            }

            await disk.FlushAsync().ConfigureAwait(false);
        }
    }

    private static async Task WriteQcowAsync(string path, List<(long Offset, int Length, byte Value)> writes)
    {
        var args = new List<string> { "-f", "qcow2" };
        foreach ((long offset, int length, byte value) in writes)
        {
            args.Add("-c");
            args.Add(string.Create(CultureInfo.InvariantCulture, $"write -q -P 0x{value:x2} {offset} {length}"));
        }

        args.Add(path);
        await Shell.RunAsync("qemu-io", [.. args]).ConfigureAwait(false);
    }
}
