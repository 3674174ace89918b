namespace BlockDriver.Docker.Tests;

/// <summary>The plugin tests run one at a time: each starts a daemon that mounts, makes loop devices and a FUSE
/// mount.</summary>
[CollectionDefinition(Name)]
public sealed class DockerTestCollection
{
    public const string Name = "docker plugin";
}
