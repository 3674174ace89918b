using BlockDriver.Abstractions;

namespace BlockDriver.Vhdx;

/// <summary>A VHDX file is malformed or inconsistent. <see cref="BlockDriverException.Kind"/> is
/// <see cref="ErrorKind.Corrupt"/>; the message names the file, the structure and the file offset.</summary>
public sealed class VhdxFormatException : BlockDriverException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="path">The VHDX file.</param>
    /// <param name="structure">The on-disk structure at fault, in MS-VHDX terms ("header", "BAT entry 12").</param>
    /// <param name="fileOffset">Byte offset of the structure in the file, or -1 when not applicable.</param>
    /// <param name="problem">What is wrong with it.</param>
    public VhdxFormatException(string path, string structure, long fileOffset, string problem)
        : base(ErrorKind.Corrupt, Format(path, structure, fileOffset, problem))
    {
        FilePath = path;
        Structure = structure;
        FileOffset = fileOffset;
    }

    /// <summary>The VHDX file.</summary>
    public string FilePath { get; }

    /// <summary>The structure at fault.</summary>
    public string Structure { get; }

    /// <summary>Byte offset of the structure in the file, or -1.</summary>
    public long FileOffset { get; }

    private static string Format(string path, string structure, long fileOffset, string problem) =>
        fileOffset >= 0
            ? $"{path}: corrupt VHDX {structure} at offset {fileOffset}: {problem}"
            : $"{path}: corrupt VHDX {structure}: {problem}";
}
