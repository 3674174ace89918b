using System.CommandLine;

namespace BlockDriver.Cli.Commands.Img;

/// <summary><c>blockdriver img</c>: qemu-img-like tools for VHDX and raw image files.</summary>
internal sealed class ImgCommand : Command
{
    public ImgCommand()
        : base("img", "Create, inspect, check, convert and compare VHDX and raw disk images (like qemu-img).")
    {
        Add(new CreateCommand());
        Add(new InfoCommand());
        Add(new CheckCommand());
        Add(new ConvertCommand());
        Add(new CompareCommand());
        Add(new MapCommand());
        Add(new CommitCommand());
        Add(new RebaseCommand());
    }
}
