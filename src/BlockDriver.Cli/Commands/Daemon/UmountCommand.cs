using System.CommandLine;

namespace BlockDriver.Cli.Commands.Daemon;

/// <summary><c>umount DIR</c>: drops one reference to the daemon's mount at DIR; the last one unmounts the file
/// system, detaches the loop device and flushes the layer.</summary>
internal sealed class UmountCommand : CliCommand
{
    private readonly Argument<string> _dir = new("DIR") { Description = "The mount point." };

    public UmountCommand()
        : base("umount", "Unmount a layer mounted through the running daemon.")
    {
        Add(_dir);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        using var client = new AdminClient(StoreCommand.ResolveRoot(parse));
        string directory = Path.GetFullPath(parse.GetValue(_dir)!);
        int left = await client.UnmountAsync(directory, ct).ConfigureAwait(false);
        Console.WriteLine(left == 0 ? $"{directory} unmounted" : $"{directory} still mounted ({left} reference(s) left)");
        return ExitCodes.Success;
    }
}
