using System.Buffers;

namespace BlockDriver.Bench;

/// <summary>One 1 MiB buffer per concurrent request, rented once from <see cref="ArrayPool{T}.Shared"/> and filled
/// with seeded noise, so that the timed loops allocate nothing themselves. Returned on dispose; not thread-safe,
/// but each worker uses only its own buffer.</summary>
internal sealed class IoBuffers : IDisposable
{
    private readonly byte[][] _arrays;

    public IoBuffers(int count, int seed)
    {
        _arrays = new byte[count][];
        for (int i = 0; i < count; i++)
        {
            _arrays[i] = ArrayPool<byte>.Shared.Rent(Workload.SequentialIoSize);
            DataPattern.FillNoise(_arrays[i].AsSpan(0, Workload.SequentialIoSize), seed + i);
        }
    }

    public int Count => _arrays.Length;

    /// <summary>The first <paramref name="length"/> bytes of worker <paramref name="index"/>'s buffer.</summary>
    public Memory<byte> Get(int index, int length) => _arrays[index].AsMemory(0, length);

    public void Dispose()
    {
        foreach (byte[] array in _arrays)
        {
            ArrayPool<byte>.Shared.Return(array);
        }
    }
}
