using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BlockDriver.Cli.Output;
using BlockDriver.Daemon;

namespace BlockDriver.Cli.Commands.Daemon;

/// <summary><c>ps [--json]</c>: what the store's daemon has mounted, where, and through which devices.</summary>
internal sealed class PsCommand : CliCommand
{
    private static readonly AdminJsonContext Indented = new(new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = true });
    private readonly Option<bool> _json = new("--json") { Description = "Print JSON: an array of mounts." };

    public PsCommand()
        : base("ps", "List the running daemon's mounts: layer, directory, loop device, FUSE file, references, mode.")
    {
        Add(_json);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        using var client = new AdminClient(StoreCommand.ResolveRoot(parse));
        List<MountJson> mounts = await client.ListAsync(ct).ConfigureAwait(false);
        if (parse.GetValue(_json))
        {
            Console.WriteLine(JsonSerializer.Serialize(mounts, Indented.ListMountJson));
            return ExitCodes.Success;
        }

        Tables.Write(
            ["LAYER", "DIRECTORY", "DEVICE", "FUSE FILE", "REFS", "OPTIONS"],
            mounts.Select(m => (IReadOnlyList<string>)[m.Layer, m.Directory, m.LoopDevice, m.FuseFile, m.References.ToString(CultureInfo.InvariantCulture), m.Options()]));
        return ExitCodes.Success;
    }
}
