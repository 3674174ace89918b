using System.CommandLine;

namespace BlockDriver.Cli.Commands.Daemon;

/// <summary><c>mount [--read-only] ID DIR</c>: asks the store's daemon to mount layer ID at DIR (created if missing).
/// Mounting the same layer at the same directory again counts one more reference, which <c>umount</c> drops.</summary>
internal sealed class MountCommand : CliCommand
{
    private readonly Argument<string> _id = new("ID") { Description = "The layer to mount (it must hold a file system: a child of the store's base layer)." };
    private readonly Argument<string> _dir = new("DIR") { Description = "The mount point." };
    private readonly Option<bool> _readOnly = new("--read-only") { Description = "Mount read-only (sealed layers always are)." };

    public MountCommand()
        : base("mount", "Mount a layer at a directory through the running daemon.")
    {
        Add(_id);
        Add(_dir);
        Add(_readOnly);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        using var client = new AdminClient(StoreCommand.ResolveRoot(parse));
        string directory = Path.GetFullPath(parse.GetValue(_dir)!);
        BlockDriver.Daemon.MountJson mount = await client.MountAsync(parse.GetValue(_id)!, directory, parse.GetValue(_readOnly), ct).ConfigureAwait(false);
        Console.WriteLine($"{mount.Layer} mounted at {mount.Directory} on {mount.LoopDevice} ({(mount.ReadOnly ? "read-only" : "read-write")}, {mount.References} reference(s))");
        return ExitCodes.Success;
    }
}
