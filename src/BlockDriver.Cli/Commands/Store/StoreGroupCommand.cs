using System.CommandLine;

namespace BlockDriver.Cli.Commands.Store;

/// <summary><c>blockdriver store</c>: the store as a whole.</summary>
internal sealed class StoreGroupCommand : Command
{
    public StoreGroupCommand()
        : base("store", "Check and repair the store itself.")
    {
        Add(new StoreCheckCommand());
    }
}
