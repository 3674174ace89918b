using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace BlockDriver.Testing;

/// <summary>Deterministic payloads: the same seed gives the same bytes on every run and machine.</summary>
/// <remarks>SplitMix64 rather than <see cref="Random.NextBytes(byte[])"/>: a seeded <see cref="Random"/> produces
/// about 200 MB/s one byte at a time, which dominated the model tests; this fills eight bytes per step.</remarks>
public static class TestPatterns
{
    /// <summary>Returns <paramref name="length"/> pseudo-random bytes from <paramref name="seed"/>.</summary>
    public static byte[] Bytes(int seed, int length)
    {
        byte[] bytes = new byte[length];
        Fill(bytes, seed);
        return bytes;
    }

    /// <summary>Fills <paramref name="destination"/> with pseudo-random bytes from <paramref name="seed"/>.</summary>
    public static void Fill(Span<byte> destination, long seed)
    {
        ulong state = (ulong)seed;
        Span<ulong> words = MemoryMarshal.Cast<byte, ulong>(destination);
        for (int i = 0; i < words.Length; i++)
        {
            words[i] = BitConverter.IsLittleEndian ? Next(ref state) : BinaryPrimitives.ReverseEndianness(Next(ref state));
        }

        Span<byte> tail = destination[(words.Length * sizeof(ulong))..];
        if (!tail.IsEmpty)
        {
            Span<byte> last = stackalloc byte[sizeof(ulong)];
            BinaryPrimitives.WriteUInt64LittleEndian(last, Next(ref state));
            last[..tail.Length].CopyTo(tail);
        }
    }

    // SplitMix64 (Steele, Lea, Flood 2014): constants from the reference implementation.
    private static ulong Next(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
