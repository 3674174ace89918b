using System.Buffers.Binary;

namespace BlockDriver.Bench;

/// <summary>Self-describing test data: every 512-byte sector starts with its virtual offset, the layer that wrote
/// it (0 = the base or a single-file device) and a magic number; the rest is seeded noise. Reading a sector back
/// through a chain therefore says which file the read resolved to.</summary>
internal static class DataPattern
{
    public const int SectorSize = 512;
    private const uint Magic = 0x4E424442; // "BDBN", little-endian

    /// <summary>Fills <paramref name="buffer"/> with seeded noise, once; <see cref="Stamp"/> then rewrites only the
    /// 16-byte sector headers.</summary>
    public static void FillNoise(Span<byte> buffer, int seed) => new Random(seed).NextBytes(buffer);

    /// <summary>Writes the header of every sector of <paramref name="buffer"/>, which holds the device bytes at
    /// <paramref name="offset"/>.</summary>
    public static void Stamp(Span<byte> buffer, long offset, int layer)
    {
        for (int at = 0; at + SectorSize <= buffer.Length; at += SectorSize)
        {
            Span<byte> header = buffer.Slice(at, 16);
            BinaryPrimitives.WriteInt64LittleEndian(header, offset + at);
            BinaryPrimitives.WriteInt32LittleEndian(header[8..], layer);
            BinaryPrimitives.WriteUInt32LittleEndian(header[12..], Magic);
        }
    }

    /// <summary>Checks that every sector of <paramref name="buffer"/>, read at <paramref name="offset"/>, was written
    /// at that offset by <paramref name="layer"/>; returns a description of the first mismatch, or null.</summary>
    public static string? Check(ReadOnlySpan<byte> buffer, long offset, int layer)
    {
        for (int at = 0; at + SectorSize <= buffer.Length; at += SectorSize)
        {
            ReadOnlySpan<byte> header = buffer.Slice(at, 16);
            long storedOffset = BinaryPrimitives.ReadInt64LittleEndian(header);
            int storedLayer = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
            uint magic = BinaryPrimitives.ReadUInt32LittleEndian(header[12..]);
            if (magic != Magic || storedOffset != offset + at || storedLayer != layer)
            {
                return magic != Magic
                    ? $"sector at {offset + at} holds no test data"
                    : $"sector at {offset + at} holds offset {storedOffset} from layer {storedLayer}, expected layer {layer}";
            }
        }

        return null;
    }
}
