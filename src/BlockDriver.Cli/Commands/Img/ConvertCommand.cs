using System.CommandLine;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Images;
using BlockDriver.Cli.Output;
using BlockDriver.Core.Images;
using BlockDriver.Vhdx;

namespace BlockDriver.Cli.Commands.Img;

/// <summary><c>img convert [-O raw|vhdx] [-B BASE] SRC DST</c>: copies the guest-visible content of SRC (raw, or a
/// VHDX read through its chain) into a new sparse DST. The default output format is raw, as in qemu-img; with
/// <c>-B</c> it is vhdx, and DST is a differencing file over BASE holding only the sectors that differ from it.
/// DST is written under a temporary name and renamed into place when complete, replacing an existing DST.</summary>
internal sealed class ConvertCommand : CliCommand
{
    private readonly Option<string?> _format = new("--output-format", "-O")
    {
        Description = "Output format: raw or vhdx [default: raw; vhdx with -B].",
        HelpName = "FORMAT",
    };

    private readonly Option<string?> _base = new("--base", "-B")
    {
        Description = "Write a differencing VHDX over this VHDX, holding only the sectors that differ from it.",
        HelpName = "BASE",
    };

    private readonly Option<string?> _blockSize = new("--block-size")
    {
        Description = "VHDX payload block size, a power of two from 1M to 256M [default: 2M, or the base's].",
        HelpName = "SIZE",
    };

    private readonly Option<int?> _sectorSize = new("--sector-size")
    {
        Description = "VHDX logical sector size, 512 or 4096 [default: the source's; with -B the base's].",
        HelpName = "BYTES",
    };

    private readonly Option<string?> _parentDir = ParentDirOption.Create();
    private readonly Argument<string> _source = new("SRC") { Description = "The image to read: raw or VHDX." };
    private readonly Argument<string> _destination = new("DST") { Description = "The image to write." };

    public ConvertCommand()
        : base("convert", "Copy an image's content into a new sparse raw or VHDX image (or a VHDX child of a base).")
    {
        _format.AcceptOnlyFromAmong("raw", "vhdx");
        Add(_format);
        Add(_base);
        Add(_blockSize);
        Add(_sectorSize);
        Add(_parentDir);
        Add(_source);
        Add(_destination);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        string sourcePath = parse.GetValue(_source)!;
        string destination = parse.GetValue(_destination)!;
        string? basePath = parse.GetValue(_base);
        string format = parse.GetValue(_format) ?? (basePath is null ? "raw" : "vhdx");
        int? blockSize = BlockSizeOption.Parse(parse.GetValue(_blockSize));
        int? sectorSize = parse.GetValue(_sectorSize);
        if (format == "raw" && (basePath is not null || blockSize is not null || sectorSize is not null))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, "-B, --block-size and --sector-size apply to VHDX output only (-O vhdx).");
        }

        if (ImageFiles.SameFile(sourcePath, destination) || (basePath is not null && ImageFiles.SameFile(basePath, destination)))
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument, $"{destination}: the output must not be the source or the base.");
        }

        string? parentDir = parse.GetValue(_parentDir);
        IBlockDevice source = ImageFiles.Open(sourcePath, readOnly: true, ParentDirOption.RootFor(parentDir, sourcePath));
        await using (source.ConfigureAwait(false))
        {
            using var output = new ReplacementFile(destination);
            DifferenceStats stats;
            IBlockDevice target = await CreateTargetAsync(format, output.TempPath, source, basePath, parentDir, blockSize, sectorSize, ct).ConfigureAwait(false);
            await using (target.ConfigureAwait(false))
            {
                DataMap candidates = basePath is null
                    ? await DataMap.LoadAsync(source, ct).ConfigureAwait(false)
                    : await DifferenceCandidates.LoadAsync(source, target, ct).ConfigureAwait(false);
                stats = await ProgressDisplay.RunAsync("Converting", source.Length,
                    progress => DifferenceWriter.WriteAsync(source, target, candidates, progress, ct)).ConfigureAwait(false);
                await target.FlushAsync(ct).ConfigureAwait(false);
            }

            output.Commit();
            string over = basePath is null ? "" : $" over '{basePath}'";
            Console.WriteLine($"Converted '{sourcePath}' to {format} '{destination}'{over}: {ByteSize.Format(stats.BytesWritten)} of data written, {ByteSize.Format(stats.BytesZeroed)} zeroed.");
        }

        return ExitCodes.Success;
    }

    private static async Task<IBlockDevice> CreateTargetAsync(string format, string path, IBlockDevice source, string? basePath, string? parentDir,
        int? blockSize, int? sectorSize, CancellationToken ct)
    {
        if (format == "raw")
        {
            return FileBlockDevice.Create(path, source.Length, source.SectorSize);
        }

        if (basePath is null)
        {
            int logical = sectorSize ?? source.SectorSize;
            int physical = source is VhdxDisk vhdx ? Math.Max(vhdx.Top.PhysicalSectorSize, logical) : 4096;
            VhdxFile.CreateDynamic(path, source.Length, new VhdxCreateOptions
            {
                BlockSize = blockSize,
                LogicalSectorSize = logical,
                PhysicalSectorSize = physical,
            });
            return VhdxDisk.Open(path);
        }

        ImageFiles.RequireVhdx(basePath, "base");
        await VhdxFile.CreateDifferencingAsync(path, basePath, new VhdxCreateOptions { BlockSize = blockSize }, ct).ConfigureAwait(false);
        // BASE is named on the command line: its directory (or DIR) holds the parents of the new chain.
        VhdxDisk child = VhdxDisk.Open(path, new VhdxOpenOptions { ParentRoot = ParentDirOption.RootFor(parentDir, basePath) });
        if (child.Length != source.Length || (sectorSize is { } n && n != child.SectorSize))
        {
            await child.DisposeAsync().ConfigureAwait(false);
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                $"{basePath}: the base is {child.Length} bytes in {child.SectorSize}-byte sectors, but the source is {source.Length} bytes{(sectorSize is { } m ? $" and --sector-size is {m}" : "")}; -B needs a base of the source's size.");
        }

        return child;
    }
}
