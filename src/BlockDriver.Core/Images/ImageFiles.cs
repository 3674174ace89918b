using BlockDriver.Abstractions;
using BlockDriver.Vhdx;

namespace BlockDriver.Core.Images;

/// <summary>Opens image files by content: a file that starts with the VHDX signature <c>vhdxfile</c>
/// (MS-VHDX 2.2.1) is VHDX, anything else is raw, as qemu-img probes.</summary>
public static class ImageFiles
{
    private static readonly byte[] VhdxSignature = "vhdxfile"u8.ToArray();

    /// <summary>Detects the format of an existing file.</summary>
    /// <exception cref="BlockDriverException">NotFound.</exception>
    public static ImageFormat Detect(string path)
    {
        RequireFile(path);
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Span<byte> head = stackalloc byte[VhdxSignature.Length];
        int read = RandomAccess.Read(handle, head, 0);
        return read == head.Length && head.SequenceEqual(VhdxSignature) ? ImageFormat.Vhdx : ImageFormat.Raw;
    }

    /// <summary>Opens a file (and, for VHDX, its whole chain) as a block device. The caller disposes it.</summary>
    /// <param name="path">The image.</param>
    /// <param name="readOnly">Open the top file read-only (parents always are).</param>
    /// <param name="parentRoot">The directory every parent of a VHDX chain must lie in (symbolic links resolved),
    /// see <see cref="VhdxOpenOptions.ParentRoot"/>; null follows locators anywhere, only for files the caller made.</param>
    public static IBlockDevice Open(string path, bool readOnly, string? parentRoot) =>
        Detect(path) == ImageFormat.Vhdx
            ? VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = readOnly, ParentRoot = parentRoot })
            : FileBlockDevice.Open(path, readOnly);

    /// <summary>Refuses a file that is not VHDX: a differencing VHDX can only have a VHDX parent.</summary>
    public static void RequireVhdx(string path, string role)
    {
        if (Detect(path) != ImageFormat.Vhdx)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"{path}: the {role} must be a VHDX file, but this is not one (no \"vhdxfile\" signature).");
        }
    }

    /// <summary>Refuses a missing file with the library's NotFound message.</summary>
    public static void RequireFile(string path)
    {
        if (!File.Exists(path))
        {
            throw new BlockDriverException(ErrorKind.NotFound, $"{path}: no such file.");
        }
    }

    /// <summary>True when both paths name the same file (after resolving relative paths and symbolic links).</summary>
    public static bool SameFile(string a, string b) =>
        string.Equals(Canonical(a), Canonical(b), StringComparison.Ordinal);

    private static string Canonical(string path)
    {
        string full = Path.GetFullPath(path);
        return File.Exists(full) ? File.ResolveLinkTarget(full, returnFinalTarget: true)?.FullName ?? full : full;
    }
}
