using System.CommandLine;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Images;
using BlockDriver.Cli.Output;
using BlockDriver.Core.Images;
using BlockDriver.Vhdx;

namespace BlockDriver.Cli.Commands.Img;

/// <summary><c>img rebase -b NEW FILE</c>: makes FILE a differencing file over NEW without changing what FILE reads
/// (qemu-img rebase's safe mode). A new differencing file over NEW receives every sector where FILE's content
/// differs from NEW's and is then renamed over FILE; FILE's old chain is only read.</summary>
internal sealed class RebaseCommand : CliCommand
{
    private readonly Option<string> _parent = new("--parent", "-b")
    {
        Description = "The new parent: a VHDX image of the same size.",
        HelpName = "NEW",
        Required = true,
    };

    private readonly Option<string?> _parentDir = ParentDirOption.Create();
    private readonly Argument<string> _file = new("FILE") { Description = "The VHDX image to move onto NEW." };

    public RebaseCommand()
        : base("rebase", "Move a VHDX image onto a new parent, keeping its content.")
    {
        Add(_parent);
        Add(_parentDir);
        Add(_file);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        string path = parse.GetValue(_file)!;
        string newParent = parse.GetValue(_parent)!;
        ImageFiles.RequireVhdx(path, "image to rebase");
        ImageFiles.RequireVhdx(newParent, "new parent");
        string? parentDir = parse.GetValue(_parentDir);
        DifferenceStats stats;
        VhdxDisk source = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = true, ParentRoot = ParentDirOption.RootFor(parentDir, path) });
        await using (source.ConfigureAwait(false))
        {
            using var output = new ReplacementFile(path);
            await VhdxFile.CreateDifferencingAsync(output.TempPath, newParent, new VhdxCreateOptions { BlockSize = source.Top.BlockSize }, ct).ConfigureAwait(false);
            // NEW is named on the command line: its directory (or DIR) holds the parents of the new chain.
            VhdxDisk target = VhdxDisk.Open(output.TempPath, new VhdxOpenOptions { ParentRoot = ParentDirOption.RootFor(parentDir, newParent) });
            await using (target.ConfigureAwait(false))
            {
                // FILE in NEW's chain would make NEW's chain read the rebased FILE: a loop, or a broken link.
                if (target.Files.Skip(1).Any(f => ImageFiles.SameFile(f.Path, path)))
                {
                    throw new BlockDriverException(ErrorKind.InvalidArgument, $"{newParent} is {path} or is made over it; rebasing onto it would make a loop.");
                }

                if (target.Length != source.Length)
                {
                    throw new BlockDriverException(ErrorKind.InvalidArgument, $"{newParent} is {target.Length} bytes but {path} is {source.Length}; the new parent must have the same size.");
                }

                DataMap candidates = await DifferenceCandidates.LoadAsync(source, target, ct).ConfigureAwait(false);
                stats = await ProgressDisplay.RunAsync("Rebasing", source.Length,
                    progress => DifferenceWriter.WriteAsync(source, target, candidates, progress, ct)).ConfigureAwait(false);
                await target.FlushAsync(ct).ConfigureAwait(false);
            }

            output.Commit();
        }

        Console.WriteLine($"Rebased '{path}' onto '{newParent}': it now holds {ByteSize.Format(stats.BytesWritten)} of data and {ByteSize.Format(stats.BytesZeroed)} of zeroes over the new parent.");
        return ExitCodes.Success;
    }
}
