using BlockDriver.Interop;

namespace BlockDriver.Vhdx.Tests.Support;

/// <summary>A file's length and its data segments (SEEK_DATA/SEEK_HOLE), held in memory so that many mutated
/// copies can be written quickly and stay sparse: a copy costs only the bytes the original holds.</summary>
internal sealed class SparseImage
{
    private SparseImage(long length, List<(long Offset, byte[] Data)> segments)
    {
        Length = length;
        Segments = segments;
    }

    public long Length { get; }

    public IReadOnlyList<(long Offset, byte[] Data)> Segments { get; }

    public static SparseImage Capture(string path)
    {
        var segments = new List<(long, byte[])>();
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        long length = RandomAccess.GetLength(handle);
        long position = 0;
        while (position < length)
        {
            long data = SparseFile.NextData(handle, position);
            if (data < 0)
            {
                break;
            }

            long hole = SparseFile.NextHole(handle, data);
            long end = hole < 0 ? length : hole;
            byte[] bytes = new byte[end - data];
            RandomAccess.Read(handle, bytes, data);
            segments.Add((data, bytes));
            position = end;
        }

        return new SparseImage(length, segments);
    }

    /// <summary>The bytes at [offset, offset + length); holes and the part past the end read as zeroes.</summary>
    public byte[] Read(long offset, int length)
    {
        byte[] bytes = new byte[length];
        foreach ((long start, byte[] data) in Segments)
        {
            long from = Math.Max(start, offset);
            long to = Math.Min(start + data.Length, offset + length);
            if (from < to)
            {
                data.AsSpan((int)(from - start), (int)(to - from)).CopyTo(bytes.AsSpan((int)(from - offset)));
            }
        }

        return bytes;
    }

    /// <summary>Writes the image to <paramref name="path"/> (replacing it), then the patches on top.</summary>
    public void WriteTo(string path, IEnumerable<(long Offset, byte[] Data)>? patches = null)
    {
        using var handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None);
        RandomAccess.SetLength(handle, Length);
        foreach ((long offset, byte[] data) in Segments)
        {
            RandomAccess.Write(handle, data, offset);
        }

        foreach ((long offset, byte[] data) in patches ?? [])
        {
            RandomAccess.Write(handle, data, offset);
        }
    }
}
