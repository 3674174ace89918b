using BlockDriver.Abstractions;
using BlockDriver.Interop;
using BlockDriver.Vhdx;

namespace BlockDriver.Core;

// Capacity questions: what N containers writing W bytes each will cost, measured rather than guessed.
public sealed partial class LayerStore
{
    // Largest amount written to the scratch child; beyond it the cost per byte is extrapolated (it is linear: data
    // plus one sector-bitmap page per 2 GiB written in 512-byte sectors).
    private const long PlanSampleLimit = 64L << 20;

    /// <summary>Measures what <paramref name="containers"/> new containers on sealed layer <paramref name="id"/>
    /// would cost if each wrote <paramref name="writePerContainer"/> bytes: a scratch child of the image is created
    /// under run/, written sequentially (up to 64 MiB; larger amounts are extrapolated from it), measured and
    /// deleted. Nothing in the catalog changes.</summary>
    /// <exception cref="BlockDriverException">NotFound; InvalidArgument for a writable layer, a negative count or a
    /// write larger than the disk.</exception>
    public async Task<CapacityPlan> PlanAsync(string id, int containers, long writePerContainer, CancellationToken ct = default)
    {
        Layer image = Get(id);
        if (!image.IsSealed)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"layer {id} is writable; containers are created on sealed layers.");
        }

        if (containers < 0 || writePerContainer < 0 || writePerContainer > image.Capacity)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"plan needs a container count >= 0 and a write size from 0 to the disk's {image.Capacity} bytes.");
        }

        string scratch = Path.Combine(Paths.Run, $"plan-{Guid.NewGuid():N}");
        Directory.CreateDirectory(scratch);
        try
        {
            string child = Path.Combine(scratch, "child.vhdx");
            await VhdxFile.CreateDifferencingAsync(child, image.Path, ct: ct).ConfigureAwait(false);
            long empty = SparseFile.AllocatedBytes(child);
            long sample = Math.Min(writePerContainer, PlanSampleLimit) / 512 * 512;
            long measured = empty;
            if (sample > 0)
            {
                await using (VhdxDisk disk = VhdxDisk.Open(child, new VhdxOpenOptions { ParentRoot = Paths.Layers }))
                {
                    byte[] buffer = new byte[Math.Min(sample, 4L << 20)];
                    Array.Fill(buffer, (byte)0xA5);
                    for (long offset = 0; offset < sample; offset += buffer.Length)
                    {
                        int length = (int)Math.Min(buffer.Length, sample - offset);
                        await disk.WriteAsync(offset, buffer.AsMemory(0, length), ct: ct).ConfigureAwait(false);
                    }

                    await disk.FlushAsync(ct).ConfigureAwait(false);
                }

                measured = SparseFile.AllocatedBytes(child);
            }

            long perContainer = sample == 0 ? empty : empty + (long)((measured - empty) * ((double)writePerContainer / sample));
            long imageBytes = GetUsage(id).VirtualSize;
            long available = new DriveInfo(Paths.Root).AvailableFreeSpace;
            long worstPerContainer = empty + (long)((measured - empty) * ((double)image.Capacity / Math.Max(sample, 1)));
            return new CapacityPlan(id, containers, writePerContainer, imageBytes, perContainer, perContainer * containers,
                sample == 0 ? empty * containers : worstPerContainer * containers, available);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }
}
