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
            destination = Take(reader, result.Buffer, destination);
            if (destination.Length > 0 && (result.IsCompleted || result.IsCanceled))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>As <see cref="ReadExactlyAsync(PipeReader, Memory{byte}, CancellationToken)"/>, but once the pipe has
    /// nothing more buffered the rest comes straight from <paramref name="source"/>, the stream under the pipe, into
    /// <paramref name="destination"/>: a large payload (an NBD WRITE's) is copied from the kernel once, not through
    /// the pipe's buffer. The caller is the pipe's only reader, with no read in flight; the pipe reads the stream only
    /// when asked to, so nothing it buffers later comes before what was read here.</summary>
    public static async ValueTask<bool> ReadExactlyAsync(this PipeReader reader, Stream source, Memory<byte> destination, CancellationToken ct)
    {
        while (destination.Length > 0)
        {
            if (reader.TryRead(out ReadResult result))
            {
                int wanted = destination.Length;
                destination = Take(reader, result.Buffer, destination);
                if (destination.Length > 0 && (result.IsCompleted || result.IsCanceled))
                {
                    return false;
                }

                if (destination.Length < wanted)
                {
                    continue;
                }
            }

            int read = await source.ReadAsync(destination, ct).ConfigureAwait(false);
            if (read == 0)
            {
                return false;
            }

            destination = destination[read..];
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

    // Copies what the pipe holds, up to what destination still wants, and consumes it; returns the rest of destination.
    private static Memory<byte> Take(PipeReader reader, ReadOnlySequence<byte> buffer, Memory<byte> destination)
    {
        long take = Math.Min(buffer.Length, destination.Length);
        buffer.Slice(0, take).CopyTo(destination.Span);
        reader.AdvanceTo(buffer.GetPosition(take));
        return destination[(int)take..];
    }
}
