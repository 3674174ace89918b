using System.CommandLine;

namespace BlockDriver.Cli.Commands.Serve;

/// <summary><c>blockdriver serve</c>: network block servers over layers and VHDX files.</summary>
internal sealed class ServeCommand : Command
{
    public ServeCommand()
        : base("serve", "Serve layers and VHDX files to network block clients.")
    {
        Add(new ServeNbdCommand());
    }
}
