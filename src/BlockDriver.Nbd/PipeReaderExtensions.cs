using System.Buffers;
using System.IO.Pipelines;

namespace BlockDriver.Nbd;

/// <summary>Exact-length reads on a <see cref="PipeReader"/> that copy into the caller's memory as data arrives,
/// so that a 32 MiB payload is never buffered twice.</summary>
internal static class PipeReaderExtensions
{
    /// <summary>Fills <paramref name="destination"/>; false when the peer closed first (what was read is lost).</summary>
    public static async ValueTask<bool> ReadExactlyAsync(this PipeReader reader, Memory<byte> destination, CancellationToken ct)
    {
        while (destination.Length > 0)
        {
            ReadResult result = await reader.ReadAsync(ct).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            long take = Math.Min(buffer.Length, destination.Length);
            buffer.Slice(0, take).CopyTo(destination.Span);
            destination = destination[(int)take..];
            reader.AdvanceTo(buffer.GetPosition(take));
            if (destination.Length > 0 && (result.IsCompleted || result.IsCanceled))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Reads and drops <paramref name="count"/> bytes; false when the peer closed first.</summary>
    public static async ValueTask<bool> SkipAsync(this PipeReader reader, long count, CancellationToken ct)
    {
        while (count > 0)
        {
            ReadResult result = await reader.ReadAsync(ct).ConfigureAwait(false);
            long take = Math.Min(result.Buffer.Length, count);
            reader.AdvanceTo(result.Buffer.GetPosition(take));
            count -= take;
            if (count > 0 && (result.IsCompleted || result.IsCanceled))
            {
                return false;
            }
        }

        return true;
    }
}
