using BlockDriver.Docker.Tests.EndToEnd;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>The Debian image suite on Debian 12's dockerd 20.10 with the graphdriver plugin.</summary>
public sealed class DebianImageOnDocker20PluginTests(DebianImageOnDocker20PluginTests.Fixture fixture, ITestOutputHelper output)
    : DebianImageTests<DebianImageOnDocker20PluginTests.Fixture>(fixture, output)
{
    public sealed class Fixture : DebianImageFixture
    {
        internal override DockerStack Stack => DockerStack.Docker20Plugin;
    }
}

/// <summary>The Debian image suite on dockerd 26's containerd image store over containerd 1.7 with the blockdriver
/// snapshotter: the path of Docker ≥ 29.</summary>
public sealed class DebianImageOnDocker26SnapshotterTests(DebianImageOnDocker26SnapshotterTests.Fixture fixture, ITestOutputHelper output)
    : DebianImageTests<DebianImageOnDocker26SnapshotterTests.Fixture>(fixture, output)
{
    public sealed class Fixture : DebianImageFixture
    {
        internal override DockerStack Stack => DockerStack.Docker26Snapshotter;
    }
}

/// <summary>The Debian image suite on dockerd 26 with the graphdriver plugin (the path of Docker 26 and 27 without the
/// containerd image store).</summary>
public sealed class DebianImageOnDocker26PluginTests(DebianImageOnDocker26PluginTests.Fixture fixture, ITestOutputHelper output)
    : DebianImageTests<DebianImageOnDocker26PluginTests.Fixture>(fixture, output)
{
    public sealed class Fixture : DebianImageFixture
    {
        internal override DockerStack Stack => DockerStack.Docker26Plugin;
    }
}
