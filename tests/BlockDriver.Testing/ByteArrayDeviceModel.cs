using System.Buffers.Binary;
using BlockDriver.Abstractions;

namespace BlockDriver.Testing;

/// <summary>The reference a device is compared against: a byte array of the whole device, plus, per sector, whether
/// its content is unspecified (trimmed on a device whose trims may read back anything). Not thread-safe.</summary>
/// <remarks>Payloads are stamped: the first 12 bytes of every written sector hold the operation index (int32) and the
/// sector number (int64), so a wrong read can be traced to the operation that wrote what came back.</remarks>
internal sealed class ByteArrayDeviceModel
{
    private const int StampLength = 12;
    private readonly byte[] _bytes;
    private readonly bool[] _unspecified;
    private readonly int _sectorSize;

    public ByteArrayDeviceModel(long length, int sectorSize)
    {
        if (length > Array.MaxLength || sectorSize < StampLength)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length,
                $"The model holds at most {Array.MaxLength} bytes in sectors of at least {StampLength}.");
        }

        _bytes = new byte[length];
        _unspecified = new bool[length / sectorSize];
        _sectorSize = sectorSize;
    }

    public static void Stamp(Span<byte> data, int operation, long offset, int sectorSize)
    {
        for (int at = 0; at < data.Length; at += sectorSize)
        {
            Span<byte> sector = data[at..];
            BinaryPrimitives.WriteInt32LittleEndian(sector, operation);
            BinaryPrimitives.WriteInt64LittleEndian(sector[4..], (offset + at) / sectorSize);
        }
    }

    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        data.CopyTo(_bytes.AsSpan((int)offset));
        _unspecified.AsSpan(Sector(offset), data.Length / _sectorSize).Clear();
    }

    public void Zero(long offset, long length)
    {
        _bytes.AsSpan((int)offset, (int)length).Clear();
        _unspecified.AsSpan(Sector(offset), (int)(length / _sectorSize)).Clear();
    }

    public void Trim(long offset, long length, bool readsZeroes)
    {
        if (readsZeroes)
        {
            Zero(offset, length);
        }
        else
        {
            _unspecified.AsSpan(Sector(offset), (int)(length / _sectorSize)).Fill(true);
        }
    }

    /// <summary>Returns null when <paramref name="actual"/>, read at <paramref name="offset"/>, agrees with the
    /// model, else a description of the first sector that does not.</summary>
    public string? Compare(long offset, ReadOnlySpan<byte> actual)
    {
        for (int at = 0; at < actual.Length; at += _sectorSize)
        {
            long position = offset + at;
            if (_unspecified[Sector(position)])
            {
                continue;
            }

            ReadOnlySpan<byte> expected = _bytes.AsSpan((int)position, _sectorSize);
            ReadOnlySpan<byte> got = actual.Slice(at, _sectorSize);
            int first = expected.CommonPrefixLength(got);
            if (first < _sectorSize)
            {
                return $"sector {Sector(position)} (byte {position + first}) reads 0x{got[first]:x2}, model has " +
                       $"0x{expected[first]:x2}; model sector holds {Describe(expected)}, device sector holds {Describe(got)}";
            }
        }

        return null;
    }

    /// <summary>Returns null when <paramref name="extent"/> is consistent with the model (a Hole or Zero extent
    /// covers only zero or unspecified sectors), else a description of the first sector that is not.</summary>
    public string? Check(Extent extent)
    {
        if (extent.Kind == ExtentKind.Data)
        {
            return null;
        }

        for (long position = extent.Offset; position < extent.End; position += _sectorSize)
        {
            if (!_unspecified[Sector(position)] && _bytes.AsSpan((int)position, _sectorSize).ContainsAnyExcept((byte)0))
            {
                return $"extent [{extent.Offset}, +{extent.Length}) is mapped {extent.Kind} but sector {Sector(position)} " +
                       $"holds {Describe(_bytes.AsSpan((int)position, _sectorSize))}";
            }
        }

        return null;
    }

    private static string Describe(ReadOnlySpan<byte> sector)
    {
        if (!sector.ContainsAnyExcept((byte)0))
        {
            return "zeroes";
        }

        int operation = BinaryPrimitives.ReadInt32LittleEndian(sector);
        long number = BinaryPrimitives.ReadInt64LittleEndian(sector[4..]);
        return $"data stamped by operation {operation} for sector {number}";
    }

    private int Sector(long offset) => (int)(offset / _sectorSize);
}
