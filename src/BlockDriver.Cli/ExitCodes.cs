namespace BlockDriver.Cli;

/// <summary>The process exit codes of <c>blockdriver</c>. Most commands use <see cref="Success"/> and
/// <see cref="Failure"/>; <c>img check</c> and <c>img compare</c> follow qemu-img, whose callers test the
/// numbers.</summary>
internal static class ExitCodes
{
    /// <summary>The command did what was asked (check: no errors; compare: identical).</summary>
    public const int Success = 0;

    /// <summary>An error stopped the command: a bad argument, a missing file, an I/O or format error.</summary>
    public const int Failure = 1;

    /// <summary><c>img check</c>: the image or its chain is corrupt (qemu-img check uses 2 too).</summary>
    public const int Corrupt = 2;

    /// <summary><c>img compare</c>: the images' contents differ (qemu-img compare uses 1).</summary>
    public const int Different = 1;

    /// <summary><c>img compare</c>: an error stopped the comparison (qemu-img compare uses 2), since 1 already
    /// means "different".</summary>
    public const int CompareFailure = 2;

    /// <summary>Interrupted (Ctrl+C): 128 + SIGINT, as shells report it.</summary>
    public const int Cancelled = 130;
}
