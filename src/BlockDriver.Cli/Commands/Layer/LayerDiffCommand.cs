using System.CommandLine;
using BlockDriver.Abstractions;
using BlockDriver.Cli.Images;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer diff ID [-o TARFILE]</c>: the layer tar of a layer's differences from its parent (deletions as
/// <c>.wh.</c> whiteouts), to TARFILE or to standard output, never to a terminal.</summary>
internal sealed class LayerDiffCommand : StoreCommand
{
    private readonly Argument<string> _id = LayerOptions.Id("The layer (writable or sealed).");
    private readonly Option<string?> _output = new("-o", "--output")
    {
        Description = "Write the tar to this file (replaced if it exists) [default: standard output].",
        HelpName = "TARFILE",
    };

    public LayerDiffCommand()
        : base("diff", "Write the layer tar of a layer's differences from its parent (deletions as whiteouts).")
    {
        Add(_id);
        Add(_output);
    }

    protected override void CheckArguments(ParseResult parse)
    {
        if (parse.GetValue(_output) is null && !Console.IsOutputRedirected)
        {
            throw new BlockDriverException(ErrorKind.InvalidArgument,
                "refusing to write a tar to a terminal: redirect standard output or use -o TARFILE.");
        }
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        string id = parse.GetValue(_id)!;
        _ = store.Get(id);
        if (parse.GetValue(_output) is not string path)
        {
            var stdout = new BufferedStream(Console.OpenStandardOutput(), 1 << 20);
            await using (stdout.ConfigureAwait(false))
            {
                await WriteDiffAsync(store, id, stdout, ct).ConfigureAwait(false);
            }

            return ExitCodes.Success;
        }

        // Built beside the target and renamed over it once complete (ReplacementFile), so a failure leaves no
        // partial file and an existing TARFILE untouched.
        using var replacement = new ReplacementFile(Path.GetFullPath(path));
        var file = new FileStream(replacement.TempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.Asynchronous);
        await using (file.ConfigureAwait(false))
        {
            await WriteDiffAsync(store, id, file, ct).ConfigureAwait(false);
            await file.FlushAsync(ct).ConfigureAwait(false);
        }

        replacement.Commit();
        return ExitCodes.Success;
    }

    private static async Task WriteDiffAsync(LayerStore store, string id, Stream output, CancellationToken ct)
    {
        ILayerContentService content = LayerContentServices.Open(store);
        await using (content.ConfigureAwait(false))
        {
            await content.DiffAsync(id, output, ct).ConfigureAwait(false);
        }

        await output.FlushAsync(ct).ConfigureAwait(false);
    }
}
