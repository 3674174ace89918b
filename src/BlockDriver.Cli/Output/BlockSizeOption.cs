using BlockDriver.Abstractions;

namespace BlockDriver.Cli.Output;

/// <summary>The <c>--block-size</c> option of <c>img create</c> and <c>img convert</c>.</summary>
internal static class BlockSizeOption
{
    /// <summary>Parses a <c>--block-size</c> value, or returns null for none; the library checks the range (1 MiB
    /// to 256 MiB) and the power of two.</summary>
    public static int? Parse(string? text)
    {
        if (text is null)
        {
            return null;
        }

        long value = ByteSize.Parse(text, "--block-size");
        return value <= int.MaxValue
            ? (int)value
            : throw new BlockDriverException(ErrorKind.InvalidArgument, $"invalid --block-size '{text}': at most 256M.");
    }
}
