using System.CommandLine;
using BlockDriver.Abstractions;

namespace BlockDriver.Cli.Images;

/// <summary><c>--parent-dir DIR</c> of the commands that open a VHDX file's chain (<c>img</c> info, check, map,
/// compare, convert, commit, rebase and <c>layer import</c>): parent locators are followed only to files inside DIR,
/// symbolic links resolved. Without it, only to files inside the directory of the image named on the command line:
/// a VHDX file's locator is its content, so an image someone handed over must not make the tool open (and report on)
/// any file of the host; chains made by qemu-img or <c>img create -b</c> in one directory need nothing more.</summary>
internal static class ParentDirOption
{
    public static Option<string?> Create() => new("--parent-dir")
    {
        Description = "Follow parent locators only to files inside DIR (symbolic links resolved) [default: the image's own directory].",
        HelpName = "DIR",
    };

    /// <summary>The directory the parents of <paramref name="image"/>'s chain must lie in.</summary>
    /// <exception cref="BlockDriverException">NotFound: DIR is not a directory.</exception>
    public static string RootFor(string? parentDir, string image)
    {
        if (parentDir is not null && !Directory.Exists(parentDir))
        {
            throw new BlockDriverException(ErrorKind.NotFound, $"--parent-dir {parentDir}: no such directory.");
        }

        return Path.GetFullPath(parentDir ?? Path.GetDirectoryName(Path.GetFullPath(image))!);
    }
}
