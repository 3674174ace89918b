using System.CommandLine;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Images;
using BlockDriver.Cli.Output;
using BlockDriver.Core.Images;

namespace BlockDriver.Cli.Commands.Img;

/// <summary><c>img compare [--strict] A B</c>: compares guest-visible contents like qemu-img compare. Exit 0 when
/// identical, 1 when different (printing the first differing offset), 2 on error. Images of different sizes
/// are identical when the common part is and the rest of the larger reads as zeroes, unless <c>--strict</c>.</summary>
internal sealed class CompareCommand : CliCommand
{
    private readonly Option<bool> _strict = new("--strict", "-s") { Description = "Images of different sizes are different." };
    private readonly Option<string?> _parentDir = ParentDirOption.Create();
    private readonly Argument<string> _first = new("A") { Description = "An image: raw or VHDX." };
    private readonly Argument<string> _second = new("B") { Description = "Another image: raw or VHDX." };

    public CompareCommand()
        : base("compare", "Compare the contents of two images (exit 0 identical, 1 different, 2 error).")
    {
        Add(_strict);
        Add(_parentDir);
        Add(_first);
        Add(_second);
    }

    /// <inheritdoc/>
    public override int FailureExitCode => ExitCodes.CompareFailure;

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        string first = parse.GetValue(_first)!;
        string second = parse.GetValue(_second)!;
        string? parentDir = parse.GetValue(_parentDir);
        IBlockDevice a = ImageFiles.Open(first, readOnly: true, ParentDirOption.RootFor(parentDir, first));
        await using (a.ConfigureAwait(false))
        {
            IBlockDevice b = ImageFiles.Open(second, readOnly: true, ParentDirOption.RootFor(parentDir, second));
            await using (b.ConfigureAwait(false))
            {
                if (a.Length != b.Length)
                {
                    if (parse.GetValue(_strict))
                    {
                        Console.WriteLine($"Strict mode: Image size mismatch! ({a.Length} and {b.Length} bytes)");
                        return ExitCodes.Different;
                    }

                    Console.WriteLine("Warning: Image size mismatch!");
                }

                long? difference = await ProgressDisplay.RunAsync("Comparing", Math.Max(a.Length, b.Length),
                    progress => ImageComparer.FindFirstDifferenceAsync(a, b, progress, ct)).ConfigureAwait(false);
                if (difference is { } offset)
                {
                    Console.WriteLine($"Content mismatch at offset {offset}!");
                    return ExitCodes.Different;
                }

                Console.WriteLine("Images are identical.");
                return ExitCodes.Success;
            }
        }
    }
}
