namespace BlockDriver.Vhdx.Tests.Support;

/// <summary>A table-driven CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial value and final XOR
/// 0xFFFFFFFF), written independently of the library's hardware-accelerated one so that tests check the format,
/// not the implementation against itself. Test vector: "123456789" → 0xE3069283.</summary>
internal static class Crc32CReference
{
    private static readonly uint[] Table = BuildTable();

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFF_FFFF;
        foreach (byte b in data)
        {
            crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return ~crc;
    }

    /// <summary>The checksum of a VHDX structure whose 4-byte checksum field at <paramref name="fieldOffset"/>
    /// counts as zero (headers, region tables and log entries all define it so).</summary>
    public static uint ComputeWithZeroedField(ReadOnlySpan<byte> data, int fieldOffset = 4)
    {
        byte[] copy = data.ToArray();
        copy.AsSpan(fieldOffset, 4).Clear();
        return Compute(copy);
    }

    private static uint[] BuildTable()
    {
        uint[] table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1;
            }

            table[i] = c;
        }

        return table;
    }
}
