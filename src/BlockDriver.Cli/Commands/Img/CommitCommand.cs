using System.CommandLine;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Images;
using BlockDriver.Cli.Output;
using BlockDriver.Core.Images;
using BlockDriver.Vhdx;

namespace BlockDriver.Cli.Commands.Img;

/// <summary><c>img commit FILE</c>: merges a differencing file into its parent, then replaces FILE with an empty
/// differencing file over the changed parent, so that FILE reads exactly as before and its chain stays valid.</summary>
/// <remarks>
/// <para>Writing the parent gives it a new DataWriteGuid (MS-VHDX 2.2.2), which breaks the link of every child
/// made over it, FILE's included; hence the new FILE. Other children of the parent cannot be repaired: they
/// recorded the old content, which no longer exists.</para>
/// <para>Only the ranges FILE itself decides (its data and its ZERO blocks) are considered, and of those only the
/// sectors that differ from the parent are written. If the command stops after writing the parent but before
/// replacing FILE, the parent holds the merged content and FILE's link is broken; recreate FILE with
/// <c>img create -b PARENT FILE</c>.</para>
/// </remarks>
internal sealed class CommitCommand : CliCommand
{
    private readonly Option<string?> _parentDir = ParentDirOption.Create();
    private readonly Argument<string> _file = new("FILE") { Description = "A differencing VHDX image." };

    public CommitCommand()
        : base("commit", "Merge a differencing image into its parent; the image is left empty over the merged parent.")
    {
        Add(_parentDir);
        Add(_file);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        string path = parse.GetValue(_file)!;
        ImageFiles.RequireVhdx(path, "image to commit");
        string parentRoot = ParentDirOption.RootFor(parse.GetValue(_parentDir), path);
        string parentPath;
        int blockSize;
        DifferenceStats stats;
        VhdxDisk child = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = true, ParentRoot = parentRoot });
        await using (child.ConfigureAwait(false))
        {
            if (child.Files.Count < 2)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument, $"{path} is not a differencing image; there is no parent to commit into.");
            }

            parentPath = child.Files[1].Path;
            blockSize = child.Top.BlockSize;
            var own = new List<(long Start, long End)>();
            await foreach (ChainExtent extent in child.MapChainAsync(0, child.Length, ct).ConfigureAwait(false))
            {
                if (extent.Layer == 0)
                {
                    own.Add((extent.Offset, extent.Offset + extent.Length));
                }
            }

            DataMap candidates = DataMap.FromRanges(own);
            if (candidates.DataBytes == 0)
            {
                Console.WriteLine($"'{path}' holds no data of its own; nothing to commit.");
                return ExitCodes.Success;
            }

            // The parent's own parents open read-only; the child keeps reading its own blocks only.
            VhdxDisk parent = VhdxDisk.Open(parentPath, new VhdxOpenOptions { ParentRoot = parentRoot });
            await using (parent.ConfigureAwait(false))
            {
                stats = await ProgressDisplay.RunAsync("Committing", child.Length,
                    progress => DifferenceWriter.WriteAsync(child, parent, candidates, progress, ct)).ConfigureAwait(false);
                await parent.FlushAsync(ct).ConfigureAwait(false);
            }
        }

        using (var emptied = new ReplacementFile(path))
        {
            await VhdxFile.CreateDifferencingAsync(emptied.TempPath, parentPath, new VhdxCreateOptions { BlockSize = blockSize }, ct).ConfigureAwait(false);
            emptied.Commit();
        }

        Console.WriteLine($"Committed '{path}' into '{parentPath}': {ByteSize.Format(stats.BytesWritten)} of data written, {ByteSize.Format(stats.BytesZeroed)} zeroed.");
        Console.WriteLine($"'{path}' is now an empty differencing image over '{parentPath}'.");
        if (!stats.IsEmpty)
        {
            Console.WriteLine($"Note: '{parentPath}' has a new DataWriteGuid; any other differencing image made over it no longer matches it and will refuse to open.");
        }

        Console.WriteLine("Image committed.");
        return ExitCodes.Success;
    }
}
