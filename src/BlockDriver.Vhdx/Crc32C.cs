using System.Buffers.Binary;
using System.Numerics;

namespace BlockDriver.Vhdx;

/// <summary>CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of VHDX headers, region tables and
/// log entries (MS-VHDX 2.2). Uses the hardware CRC32 instruction through <see cref="BitOperations.Crc32C(uint, ulong)"/>.</summary>
internal static class Crc32C
{
    /// <summary>CRC-32C of <paramref name="data"/>: initial value and final XOR 0xFFFFFFFF.</summary>
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        return ~Accumulate(0xFFFF_FFFF, data);
    }

    /// <summary>CRC-32C of a structure whose 4-byte checksum field at <paramref name="checksumOffset"/> counts as
    /// zero, as every VHDX checksum is defined.</summary>
    public static uint ComputeWithZeroedField(ReadOnlySpan<byte> data, int checksumOffset)
    {
        uint crc = 0xFFFF_FFFF;
        crc = Accumulate(crc, data[..checksumOffset]);
        crc = Accumulate(crc, stackalloc byte[4]);
        crc = Accumulate(crc, data[(checksumOffset + 4)..]);
        return ~crc;
    }

    /// <summary>As <see cref="ComputeWithZeroedField(ReadOnlySpan{byte}, int)"/> over <paramref name="first"/>
    /// followed by <paramref name="second"/> (a structure that wraps around the end of a ring, as a log entry may);
    /// the field lies in <paramref name="first"/>.</summary>
    public static uint ComputeWithZeroedField(ReadOnlySpan<byte> first, ReadOnlySpan<byte> second, int checksumOffset)
    {
        uint crc = 0xFFFF_FFFF;
        crc = Accumulate(crc, first[..checksumOffset]);
        crc = Accumulate(crc, stackalloc byte[4]);
        crc = Accumulate(crc, first[(checksumOffset + 4)..]);
        crc = Accumulate(crc, second);
        return ~crc;
    }

    private static uint Accumulate(uint crc, ReadOnlySpan<byte> data)
    {
        int i = 0;
        for (; i + 8 <= data.Length; i += 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        }

        for (; i < data.Length; i++)
        {
            crc = BitOperations.Crc32C(crc, data[i]);
        }

        return crc;
    }
}
