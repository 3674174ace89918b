using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Images;
using BlockDriver.Cli.Output;
using BlockDriver.Core.Images;
using BlockDriver.Vhdx;

namespace BlockDriver.Cli.Commands.Img;

/// <summary><c>img map [--json] FILE</c>: every extent of the disk, its state (data, zero, hole) and the file of the
/// chain that decides it, like qemu-img map.</summary>
internal sealed class MapCommand : CliCommand
{
    private readonly Option<string?> _parentDir = ParentDirOption.Create();
    private readonly Option<bool> _json = new("--json") { Description = "Print a JSON array (shape in README.md) instead of a table." };
    private readonly Argument<string> _file = new("FILE") { Description = "A VHDX or raw image." };

    public MapCommand()
        : base("map", "Show where each extent of an image's content is stored in its chain.")
    {
        Add(_json);
        Add(_parentDir);
        Add(_file);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        string path = parse.GetValue(_file)!;
        List<MapEntry> entries = ImageFiles.Detect(path) == ImageFormat.Vhdx
            ? await MapVhdxAsync(path, ParentDirOption.RootFor(parse.GetValue(_parentDir), path), ct).ConfigureAwait(false)
            : await MapRawAsync(path, ct).ConfigureAwait(false);
        if (parse.GetValue(_json))
        {
            Console.WriteLine(JsonSerializer.Serialize(entries, CliJsonContext.Default.ListMapEntry));
        }
        else
        {
            WriteTable(entries);
        }

        return ExitCodes.Success;
    }

    private static async Task<List<MapEntry>> MapVhdxAsync(string path, string parentRoot, CancellationToken ct)
    {
        VhdxDisk disk = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = true, ParentRoot = parentRoot });
        await using (disk.ConfigureAwait(false))
        {
            var entries = new List<MapEntry>();
            await foreach (ChainExtent e in disk.MapChainAsync(0, disk.Length, ct).ConfigureAwait(false))
            {
                bool decided = e.Layer >= 0;
                entries.Add(new MapEntry(e.Offset, e.Length, StateName(e.Kind), decided ? e.Layer : null,
                    decided ? disk.Files[e.Layer].Path : null, e.Kind == ExtentKind.Data ? e.FileOffset : null));
            }

            return entries;
        }
    }

    private static async Task<List<MapEntry>> MapRawAsync(string path, CancellationToken ct)
    {
        FileBlockDevice device = FileBlockDevice.Open(path);
        await using (device.ConfigureAwait(false))
        {
            var entries = new List<MapEntry>();
            await foreach (Extent e in device.MapAsync(0, device.Length, ct).ConfigureAwait(false))
            {
                bool data = e.Kind == ExtentKind.Data;
                entries.Add(new MapEntry(e.Offset, e.Length, StateName(e.Kind), data ? 0 : null, data ? path : null, data ? e.Offset : null));
            }

            return entries;
        }
    }

    private static string StateName(ExtentKind kind) => kind switch
    {
        ExtentKind.Data => "data",
        ExtentKind.Zero => "zero",
        _ => "hole",
    };

    // qemu-img map's human layout (16-character columns, hexadecimal offsets), with a State column added because
    // zero and hole extents are listed too.
    private static void WriteTable(List<MapEntry> entries)
    {
        Console.WriteLine($"{"Offset",-16}{"Length",-16}{"Mapped to",-16}{"State",-8}File");
        foreach (MapEntry e in entries)
        {
            Console.WriteLine($"{Hex(e.Start),-16}{Hex(e.Length),-16}{(e.Offset is { } o ? Hex(o) : "-"),-16}{e.State,-8}{e.File ?? "-"}");
        }
    }

    private static string Hex(long value) => value == 0 ? "0" : "0x" + value.ToString("x", CultureInfo.InvariantCulture);
}
