using System.Buffers;
using BlockDriver.Abstractions;

namespace BlockDriver.Core;

/// <summary>Layer ids: chosen by the caller or generated. An id names a file (layers/ID.vhdx), so it is 1–128
/// characters of letters, digits, '_', '-' and '.', starting with a letter or digit: Docker's 64-hex-digit ids,
/// "base", "app-v1.2" are ids; "../x", ".hidden", "a/b" and "" are not.</summary>
public static class LayerIds
{
    /// <summary>Longest id accepted.</summary>
    public const int MaxLength = 128;

    private static readonly SearchValues<char> Allowed =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.");

    /// <summary>A new random id: 32 lowercase hex digits.</summary>
    public static string Generate() => Guid.NewGuid().ToString("N");

    /// <summary>Throws InvalidArgument unless <paramref name="id"/> is a valid id.</summary>
    public static void Validate(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        if (id.Length is 0 or > MaxLength || !char.IsAsciiLetterOrDigit(id[0]) || id.AsSpan().ContainsAnyExcept(Allowed))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"\"{id}\" is not a valid layer id: use 1-{MaxLength} letters, digits, '_', '-' or '.', starting with a letter or digit.");
        }
    }
}
