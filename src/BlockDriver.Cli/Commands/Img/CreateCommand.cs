using System.CommandLine;
using System.Globalization;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Output;
using BlockDriver.Core.Images;
using BlockDriver.Vhdx;

namespace BlockDriver.Cli.Commands.Img;

/// <summary><c>img create [-b PARENT] FILE [SIZE]</c>: a new dynamic VHDX, or a differencing one over PARENT.
/// An existing FILE is refused (qemu-img would overwrite it).</summary>
internal sealed class CreateCommand : CliCommand
{
    private readonly Option<string?> _parent = new("--parent", "-b")
    {
        Description = "Create a differencing file over this VHDX parent (its size and sector sizes are taken).",
        HelpName = "PARENT",
    };

    private readonly Option<string?> _blockSize = new("--block-size")
    {
        Description = "Payload block size, a power of two from 1M to 256M [default: 2M, or the parent's].",
        HelpName = "SIZE",
    };

    private readonly Option<int?> _sectorSize = new("--sector-size")
    {
        Description = "Logical sector size in bytes, 512 or 4096 [default: 512, or the parent's].",
        HelpName = "BYTES",
    };

    private readonly Argument<string> _file = new("FILE") { Description = "The VHDX file to create." };

    private readonly Argument<string?> _size = new("SIZE")
    {
        Description = "Virtual size: bytes or a number with suffix K, M, G or T (10G). Required unless -b is given.",
        Arity = ArgumentArity.ZeroOrOne,
    };

    public CreateCommand()
        : base("create", "Create a dynamic VHDX image, or a differencing one over a parent.")
    {
        Add(_parent);
        Add(_blockSize);
        Add(_sectorSize);
        Add(_file);
        Add(_size);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        string file = parse.GetValue(_file)!;
        string? parent = parse.GetValue(_parent);
        string? sizeText = parse.GetValue(_size);
        long? size = sizeText is null ? null : ByteSize.Parse(sizeText, "size");
        int? blockSize = BlockSizeOption.Parse(parse.GetValue(_blockSize));
        int? sectorSize = parse.GetValue(_sectorSize);

        if (parent is null)
        {
            if (size is not { } virtualSize)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument, "a size is required for a dynamic image (for example: img create disk.vhdx 10G).");
            }

            CreateDirectoryOf(file);
            VhdxFile.CreateDynamic(file, virtualSize, new VhdxCreateOptions { BlockSize = blockSize, LogicalSectorSize = sectorSize ?? 512 });
        }
        else
        {
            await CheckParentAsync(parent, size, sectorSize).ConfigureAwait(false);
            CreateDirectoryOf(file);
            await VhdxFile.CreateDifferencingAsync(file, parent, new VhdxCreateOptions { BlockSize = blockSize }, ct).ConfigureAwait(false);
        }

        VhdxFile created = VhdxFile.Open(file, readOnly: true);
        await using (created.ConfigureAwait(false))
        {
            string line = string.Create(CultureInfo.InvariantCulture,
                $"Formatting '{file}', fmt=vhdx size={created.VirtualSize} block_size={created.BlockSize} logical_sector_size={created.LogicalSectorSize} physical_sector_size={created.PhysicalSectorSize}");
            Console.WriteLine(parent is null ? line : $"{line} backing_file={parent}");
        }

        return ExitCodes.Success;
    }

    // A differencing file takes its size and sector size from the parent; values given must agree with it.
    private static async Task CheckParentAsync(string parent, long? size, int? sectorSize)
    {
        ImageFiles.RequireVhdx(parent, "parent");
        VhdxFile file = VhdxFile.Open(parent, readOnly: true);
        await using (file.ConfigureAwait(false))
        {
            if (size is { } s && s != file.VirtualSize)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument,
                    $"size {s} differs from the parent's {file.VirtualSize} bytes; a differencing image has its parent's size (omit SIZE).");
            }

            if (sectorSize is { } n && n != file.LogicalSectorSize)
            {
                throw new BlockDriverException(ErrorKind.InvalidArgument,
                    $"--sector-size {n} differs from the parent's {file.LogicalSectorSize}-byte sectors.");
            }
        }
    }

    // Like mkdir -p for the image's directory, so that "img create .blockdriver/base.vhdx 1G" works in a fresh tree.
    private static void CreateDirectoryOf(string file)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(file));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }
    }
}
