using System.CommandLine;

namespace BlockDriver.Cli.Commands.Daemon;

/// <summary><c>mount [--read-only] [--suid] [--dev] ID DIR</c>: asks the store's daemon to mount layer ID at DIR
/// (created if missing). Mounting the same layer at the same directory again counts one more reference, which
/// <c>umount</c> drops. The mount is <c>nosuid,nodev</c> unless asked otherwise: a layer's content is not the
/// admin's, and a setuid binary or a device node in it must not be a way up for a local user.</summary>
internal sealed class MountCommand : CliCommand
{
    private readonly Argument<string> _id = new("ID") { Description = "The layer to mount (it must hold a file system: a child of the store's base layer)." };
    private readonly Argument<string> _dir = new("DIR") { Description = "The mount point." };
    private readonly Option<bool> _readOnly = new("--read-only") { Description = "Mount read-only (sealed layers always are)." };
    private readonly Option<bool> _suid = new("--suid") { Description = "Let set-user-ID bits and file capabilities in the layer take effect (default: nosuid)." };
    private readonly Option<bool> _dev = new("--dev") { Description = "Let device nodes in the layer open devices (default: nodev)." };

    public MountCommand()
        : base("mount", "Mount a layer at a directory through the running daemon.")
    {
        Add(_id);
        Add(_dir);
        Add(_readOnly);
        Add(_suid);
        Add(_dev);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        using var client = new AdminClient(StoreCommand.ResolveRoot(parse));
        string directory = Path.GetFullPath(parse.GetValue(_dir)!);
        var request = new BlockDriver.Daemon.MountRequest(parse.GetValue(_id)!, directory, parse.GetValue(_readOnly), parse.GetValue(_suid), parse.GetValue(_dev));
        BlockDriver.Daemon.MountJson mount = await client.MountAsync(request, ct).ConfigureAwait(false);
        Console.WriteLine($"{mount.Layer} mounted at {mount.Directory} on {mount.LoopDevice} ({mount.Options()}, {mount.References} reference(s))");
        return ExitCodes.Success;
    }
}
