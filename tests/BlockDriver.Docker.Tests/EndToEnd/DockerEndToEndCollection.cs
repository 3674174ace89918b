namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>The Docker end-to-end tests run one at a time: each runs dockerds, a blockdriver daemon, loop devices and
/// containers on a machine of two cores.</summary>
[CollectionDefinition(Name)]
public sealed class DockerEndToEndCollection
{
    public const string Name = "DockerEndToEnd";
}
