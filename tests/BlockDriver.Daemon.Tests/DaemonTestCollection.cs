namespace BlockDriver.Daemon.Tests;

/// <summary>The daemon tests run one at a time: each mounts, makes loop devices and kills processes.</summary>
[CollectionDefinition(Name)]
public sealed class DaemonTestCollection
{
    public const string Name = "daemon";
}
