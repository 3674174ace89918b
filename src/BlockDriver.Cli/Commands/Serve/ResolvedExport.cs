using BlockDriver.Abstractions;
using BlockDriver.Nbd;

namespace BlockDriver.Cli.Commands.Serve;

/// <summary>An export ready to serve: its NBD descriptor and the open device behind it, which the command owns.</summary>
internal sealed record ResolvedExport(NbdExport Export, IBlockDevice Device);
