using BlockDriver.Interop;
using BlockDriver.Vhdx;

namespace BlockDriver.Cli.Tests.Support;

/// <summary>Builds test images directly with the library (setup only; the commands under test run in the CLI) and
/// reads them back.</summary>
internal static class TestImages
{
    public const long MiB = 1024 * 1024;

    /// <summary>A sparse raw file of <paramref name="length"/> bytes with seeded pseudo-random data in the given
    /// ranges and holes everywhere else.</summary>
    public static void WriteRaw(string path, long length, params (long Offset, int Length, int Seed)[] data)
    {
        using var handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite);
        RandomAccess.SetLength(handle, length);
        foreach ((long offset, int count, int seed) in data)
        {
            RandomAccess.Write(handle, TestPatterns.Bytes(seed, count), offset);
        }
    }

    /// <summary>Copies a file and changes bytes of the copy: seeded data at each offset.</summary>
    public static void CopyAndModify(string source, string destination, params (long Offset, int Length, int Seed)[] data)
    {
        File.Copy(source, destination);
        using var handle = File.OpenHandle(destination, FileMode.Open, FileAccess.ReadWrite);
        foreach ((long offset, int count, int seed) in data)
        {
            RandomAccess.Write(handle, TestPatterns.Bytes(seed, count), offset);
        }
    }

    /// <summary>Writes seeded data into a VHDX (the top of its chain) at the given offsets.</summary>
    public static async Task WriteVhdxAsync(string path, params (long Offset, int Length, int Seed)[] data)
    {
        await using VhdxDisk disk = VhdxDisk.Open(path);
        foreach ((long offset, int count, int seed) in data)
        {
            await disk.WriteAsync(offset, TestPatterns.Bytes(seed, count));
        }

        await disk.FlushAsync();
    }

    /// <summary>Makes a range of a VHDX (the top of its chain) read as zeroes.</summary>
    public static async Task ZeroVhdxAsync(string path, long offset, long length)
    {
        await using VhdxDisk disk = VhdxDisk.Open(path);
        await disk.WriteZeroesAsync(offset, length);
        await disk.FlushAsync();
    }

    /// <summary>Reads <paramref name="length"/> bytes of a VHDX chain's content.</summary>
    public static async Task<byte[]> ReadVhdxAsync(string path, long offset, int length)
    {
        await using VhdxDisk disk = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = true });
        byte[] buffer = new byte[length];
        await disk.ReadAsync(offset, buffer);
        return buffer;
    }

    /// <summary>The DataWriteGuid of one VHDX file.</summary>
    public static async Task<Guid> DataWriteGuidAsync(string path)
    {
        await using VhdxFile file = VhdxFile.Open(path, readOnly: true);
        return file.DataWriteGuid;
    }

    /// <summary>Bytes the file occupies on disk.</summary>
    public static long Allocated(string path) => SparseFile.AllocatedBytes(path);
}
