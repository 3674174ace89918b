using System.CommandLine;
using BlockDriver.Abstractions;
using BlockDriver.Core;

namespace BlockDriver.Cli.Commands.Layer;

/// <summary><c>layer apply ID TARFILE|-</c>: applies a Docker/OCI layer tar (whiteouts honoured) to a writable
/// layer, mounting it for the time it takes.</summary>
internal sealed class LayerApplyCommand : StoreCommand
{
    /// <summary>The TARFILE value that means standard input.</summary>
    public const string StandardInput = "-";

    private readonly Argument<string> _id = LayerOptions.Id("The writable layer to apply the tar to.");
    private readonly Argument<string> _tar = new("TARFILE") { Description = "An uncompressed layer tar, or - to read it from standard input." };

    public LayerApplyCommand()
        : base("apply", "Apply a Docker/OCI layer tar (whiteouts honoured) to a writable layer.")
    {
        Add(_id);
        Add(_tar);
    }

    protected override void CheckArguments(ParseResult parse)
    {
        string tar = parse.GetValue(_tar)!;
        if (tar != StandardInput && !File.Exists(tar))
        {
            throw new BlockDriverException(ErrorKind.NotFound, $"{tar}: no such file.");
        }
    }

    protected override async Task<int> ExecuteAsync(LayerStore store, ParseResult parse, CancellationToken ct)
    {
        string id = parse.GetValue(_id)!;
        string tarPath = parse.GetValue(_tar)!;
        Stream input = tarPath == StandardInput
            ? Console.OpenStandardInput()
            : new FileStream(tarPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await using (input.ConfigureAwait(false))
        {
            ILayerContentService content = LayerContentServices.Open(store);
            await using (content.ConfigureAwait(false))
            {
                try
                {
                    await content.ApplyAsync(id, input, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException || (e is BlockDriverException { Kind: ErrorKind.InvalidArgument } && e.Message.StartsWith("layer tar:", StringComparison.Ordinal)))
                {
                    // The applier refuses an entry when it reaches it (a stream cannot be read twice), so what came
                    // before stays in the layer; the layer itself is unmounted and usable.
                    string source = tarPath == StandardInput ? "standard input" : tarPath;
                    throw new BlockDriverException(ErrorKind.InvalidArgument,
                        $"{source}: {e.Message} Layer {id} keeps the entries applied before it; remove the layer (or revert it to a snapshot) to discard them.", e);
                }
            }
        }

        return ExitCodes.Success;
    }
}
