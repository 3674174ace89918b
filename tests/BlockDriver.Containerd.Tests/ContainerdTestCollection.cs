namespace BlockDriver.Containerd.Tests;

/// <summary>The tests run one class at a time: each starts daemons, attaches loop devices and mounts.</summary>
[CollectionDefinition(Name)]
public sealed class ContainerdTestCollection
{
    public const string Name = "containerd";
}
