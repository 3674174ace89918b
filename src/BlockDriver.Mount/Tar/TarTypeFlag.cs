namespace BlockDriver.Mount.Tar;

/// <summary>The typeflag byte of a tar header (POSIX.1-2001 ustar and pax, GNU tar's extensions).</summary>
internal static class TarTypeFlag
{
    public const byte Regular = (byte)'0';
    public const byte RegularOld = 0; // V7 '\0'
    public const byte HardLink = (byte)'1';
    public const byte Symlink = (byte)'2';
    public const byte CharDevice = (byte)'3';
    public const byte BlockDevice = (byte)'4';
    public const byte Directory = (byte)'5';
    public const byte Fifo = (byte)'6';
    public const byte Contiguous = (byte)'7';
    public const byte PaxExtended = (byte)'x';
    public const byte PaxGlobal = (byte)'g';
    public const byte GnuLongName = (byte)'L';
    public const byte GnuLongLink = (byte)'K';
    public const byte GnuSparse = (byte)'S';
    public const byte GnuDumpDir = (byte)'D';
    public const byte GnuVolumeLabel = (byte)'V';

    /// <summary>Types whose size field says nothing of data following the header (archive/tar's
    /// isHeaderOnlyType): links, devices, directories, FIFOs.</summary>
    public static bool IsHeaderOnly(byte type) =>
        type is HardLink or Symlink or CharDevice or BlockDevice or Directory or Fifo;

    /// <summary>A printable name of the type, for messages.</summary>
    public static string Describe(byte type) => type is >= 0x20 and < 0x7f ? $"'{(char)type}'" : $"0x{type:x2}";
}
