using System.CommandLine;
using BlockDriver.Cli.Commands.Serve;
using BlockDriver.Nbd;

namespace BlockDriver.Cli.Commands;

/// <summary><c>attach-nbd [--read-only] EXPORT [DEVICE]</c>: serves EXPORT to the kernel as /dev/nbdN (the first
/// free one, or DEVICE) until SIGINT or SIGTERM, then detaches. Needs root and the nbd kernel module.</summary>
internal sealed class AttachNbdCommand : CliCommand
{
    private readonly Option<bool> _readOnly = new("--read-only") { Description = "Attach read-only." };
    private readonly Argument<string> _export = new("EXPORT") { Description = "A VHDX file." };
    private readonly Argument<string?> _device = new("DEVICE") { Description = "The nbd device [default: the first free /dev/nbdN].", Arity = ArgumentArity.ZeroOrOne };

    public AttachNbdCommand()
        : base("attach-nbd", "Attach an export to a kernel NBD device (/dev/nbdN) until interrupted.")
    {
        Add(_readOnly);
        Add(_export);
        Add(_device);
    }

    protected override async Task<int> ExecuteAsync(ParseResult parse, CancellationToken ct)
    {
        var resolver = new ExportResolver(StoreCommand.ResolveRoot(parse));
        await using (resolver.ConfigureAwait(false))
        {
            ResolvedExport export = (await resolver.OpenAllAsync([parse.GetValue(_export)!], parse.GetValue(_readOnly), ct).ConfigureAwait(false))[0];
            using var signal = new TerminationSignal(ct);
            var server = new NbdServer([export.Export]);
            await using (server.ConfigureAwait(false))
            {
                NbdKernelAttach attach = await NbdKernelAttach.AttachAsync(server, export.Export.Name, parse.GetValue(_device), ct).ConfigureAwait(false);
                await using (attach.ConfigureAwait(false))
                {
                    Console.WriteLine($"attached: {attach.DevicePath}");

                    // Until a signal, or until the device is disconnected from outside (nbd-client -d).
                    await Task.WhenAny(signal.WaitAsync(), attach.Completion).ConfigureAwait(false);
                }

                Console.WriteLine($"detached: {attach.DevicePath}");
            }
        }

        return ExitCodes.Success;
    }
}
