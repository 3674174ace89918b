using System.CommandLine;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Images;
using BlockDriver.Core.Images;
using BlockDriver.Vhdx;

namespace BlockDriver.Cli.Commands.Img;

/// <summary><c>img check FILE</c>: a read-only structural check of a VHDX file and its chain. Exit
/// <see cref="ExitCodes.Success"/> when clean, <see cref="ExitCodes.Corrupt"/> when corrupt,
/// <see cref="ExitCodes.Failure"/> when the check could not run (no such file, I/O error).</summary>
/// <remarks>
/// Opening the chain runs the library's validation of every file (headers, region tables, metadata, BAT states
/// and layout, log) and of every link (parent found, DataWriteGuid matches parent_linkage, sizes agree, no
/// loop). On top of that: every allocated block must lie wholly inside its file (the library checks only that it
/// starts inside), and the whole chain must map. A pending log replayed in memory is a warning, not an error:
/// the file is consistent, and the next writable open applies the log.
/// </remarks>
internal sealed class CheckCommand : CliCommand
{
    private readonly Option<string?> _parentDir = ParentDirOption.Create();
    private readonly Argument<string> _file = new("FILE") { Description = "A VHDX image (its parents are checked too)." };

    public CheckCommand()
        : base("check", "Check a VHDX image and its parent chain for corruption (exit 0 clean, 2 corrupt, 1 error).")
    {
        Add(_parentDir);
        Add(_file);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        string path = parse.GetValue(_file)!;
        if (ImageFiles.Detect(path) == ImageFormat.Raw)
        {
            Console.WriteLine($"'{path}' is a raw image: it has no metadata to check.");
            return ExitCodes.Success;
        }

        string parentRoot = ParentDirOption.RootFor(parse.GetValue(_parentDir), path);
        var errors = new List<string>();
        var warnings = new List<string>();
        int files = 0;
        VhdxDisk? disk = null;
        try
        {
            disk = VhdxDisk.Open(path, new VhdxOpenOptions { ReadOnly = true, ParentRoot = parentRoot });
        }
        catch (BlockDriverException e) when (e.Kind is ErrorKind.Corrupt or ErrorKind.NotFound)
        {
            // The file itself exists (Detect read it), so NotFound here is a missing parent: a broken chain.
            errors.Add(e.Message);
        }

        if (disk is not null)
        {
            await using (disk.ConfigureAwait(false))
            {
                files = disk.Files.Count;
                foreach (VhdxFile file in disk.Files)
                {
                    CheckFile(file, warnings);
                }

                await CheckMapAsync(disk, errors, ct).ConfigureAwait(false);
            }
        }

        foreach (string warning in warnings)
        {
            Console.WriteLine($"Warning: {warning}");
        }

        if (errors.Count > 0)
        {
            foreach (string error in errors)
            {
                Console.WriteLine($"ERROR: {error}");
            }

            Console.WriteLine();
            Console.WriteLine($"{errors.Count} {(errors.Count == 1 ? "error was" : "errors were")} found on the image.");
            Console.WriteLine("Data may be corrupted, or further writes to the image may corrupt it.");
            return ExitCodes.Corrupt;
        }

        Console.WriteLine("No errors were found on the image.");
        Console.WriteLine($"{files} {(files == 1 ? "file" : "files")} checked: {string.Join(", ", disk!.Files.Select(f => f.Path))}");
        return ExitCodes.Success;
    }

    private static void CheckFile(VhdxFile file, List<string> warnings)
    {
        // Opening already validated the layout (bounds, overlaps, states, truncation); what is left to say is
        // whether the file was closed cleanly.
        if (file.ReplayedLog)
        {
            warnings.Add($"{file.Path}: the log holds changes not yet applied (the file was not closed cleanly); they were replayed in memory to check the file, and the next writable open applies them.");
        }
    }

    private static async Task CheckMapAsync(VhdxDisk disk, List<string> errors, CancellationToken ct)
    {
        try
        {
            // Resolves every BAT entry and sector-bitmap page of every file in the chain.
            await disk.MapChainAsync(0, disk.Length, ct).CountAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is BlockDriverException or IOException)
        {
            errors.Add($"{disk.Top.Path}: mapping the chain failed: {e.Message}");
        }
    }
}
