using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Images;
using BlockDriver.Cli.Output;
using BlockDriver.Core.Images;
using BlockDriver.Interop;
using BlockDriver.Vhdx;

namespace BlockDriver.Cli.Commands.Img;

/// <summary><c>img info [--json] FILE</c>: sizes, geometry, identity and the whole parent chain.</summary>
internal sealed class InfoCommand : CliCommand
{
    private readonly Option<string?> _parentDir = ParentDirOption.Create();
    private readonly Option<bool> _json = new("--json") { Description = "Print JSON (shape in README.md) instead of text." };
    private readonly Argument<string> _file = new("FILE") { Description = "A VHDX or raw image." };

    public InfoCommand()
        : base("info", "Show an image's sizes, block and sector sizes, identity and parent chain.")
    {
        Add(_json);
        Add(_parentDir);
        Add(_file);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        string path = parse.GetValue(_file)!;
        ImageInfo info = await ReadAsync(path, ParentDirOption.RootFor(parse.GetValue(_parentDir), path)).ConfigureAwait(false);
        if (parse.GetValue(_json))
        {
            Console.WriteLine(JsonSerializer.Serialize(info, CliJsonContext.Default.ImageInfo));
        }
        else
        {
            WriteText(info);
        }

        return ExitCodes.Success;
    }

    private static async Task<ImageInfo> ReadAsync(string path, string parentRoot)
    {
        if (ImageFiles.Detect(path) == ImageFormat.Raw)
        {
            long length = new FileInfo(path).Length;
            var raw = new ImageFileInfo
            {
                Filename = path,
                Format = "raw",
                VirtualSize = length,
                DiskSize = SparseFile.AllocatedBytes(path),
                FileLength = length,
            };
            return new ImageInfo(path, "raw", length, [raw]);
        }

        VhdxDisk disk = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = true, ParentRoot = parentRoot });
        await using (disk.ConfigureAwait(false))
        {
            var chain = new List<ImageFileInfo>();
            for (int i = 0; i < disk.Files.Count; i++)
            {
                chain.Add(Describe(disk.Files[i], i + 1 < disk.Files.Count ? disk.Files[i + 1] : null));
            }

            return new ImageInfo(path, "vhdx", disk.Length, chain);
        }
    }

    private static ImageFileInfo Describe(VhdxFile file, VhdxFile? parent)
    {
        ParentInfo? parentInfo = null;
        if (file.ParentLocator is { } locator && parent is not null)
        {
            parentInfo = new ParentInfo(
                parent.Path,
                locator.Entries.GetValueOrDefault("relative_path"),
                locator.Entries.GetValueOrDefault("absolute_win32_path"),
                locator.Linkage);
        }

        return new ImageFileInfo
        {
            Filename = file.Path,
            Format = "vhdx",
            Type = file.HasParent ? "differencing" : "dynamic",
            VirtualSize = file.VirtualSize,
            DiskSize = file.AllocatedBytes,
            FileLength = new FileInfo(file.Path).Length,
            BlockSize = file.BlockSize,
            LogicalSectorSize = file.LogicalSectorSize,
            PhysicalSectorSize = file.PhysicalSectorSize,
            DataWriteGuid = file.DataWriteGuid,
            VirtualDiskId = file.VirtualDiskId,
            LogReplayed = file.ReplayedLog,
            Parent = parentInfo,
        };
    }

    // The layout of qemu-img info --backing-chain: one block of "key: value" lines per file, a blank line between.
    private static void WriteText(ImageInfo info)
    {
        for (int i = 0; i < info.Chain.Count; i++)
        {
            ImageFileInfo file = info.Chain[i];
            if (i > 0)
            {
                Console.WriteLine();
            }

            Line("image", file.Filename);
            Line("file format", file.Format);
            if (file.Type is not null)
            {
                Line("type", file.Type);
            }

            Line("virtual size", ByteSize.FormatWithBytes(file.VirtualSize));
            Line("disk size", ByteSize.Format(file.DiskSize));
            Line("file length", ByteSize.FormatWithBytes(file.FileLength));
            if (file.Format == "vhdx")
            {
                Line("block size", ByteSize.FormatWithBytes(file.BlockSize!.Value));
                Line("logical sector size", Invariant(file.LogicalSectorSize!.Value));
                Line("physical sector size", Invariant(file.PhysicalSectorSize!.Value));
                Line("data write guid", file.DataWriteGuid!.Value.ToString("B"));
                Line("virtual disk id", file.VirtualDiskId!.Value.ToString("B"));
            }

            if (file.Parent is { } parent)
            {
                Line("backing file", $"{parent.RelativePath ?? parent.AbsolutePath} (actual path: {parent.Filename})");
                Line("parent linkage", parent.Linkage.ToString("B"));
            }

            if (file.LogReplayed == true)
            {
                Line("log", "pending entries replayed in memory (the file was not closed cleanly; a writable open applies them)");
            }
        }
    }

    private static void Line(string key, string value) => Console.WriteLine($"{key}: {value}");

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
