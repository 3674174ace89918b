namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>A way Docker stores its images on BlockDriver: which dockerd, and through which of the daemon's two
/// front ends. The end-to-end suites run over each, so a regression on any path Docker takes fails.</summary>
internal sealed record DockerStack(string Name, bool Modern, bool Snapshotter)
{
    /// <summary>Debian 12's dockerd 20.10 (--experimental) on the graphdriver plugin.</summary>
    public static DockerStack Docker20Plugin { get; } = new("dockerd 20.10 + graphdriver plugin", Modern: false, Snapshotter: false);

    /// <summary>Debian 13's dockerd 26 with the containerd image store (<c>features.containerd-snapshotter</c>) over
    /// Debian 13's containerd 1.7, whose proxy plugin is the daemon's snapshotter: the only path of Docker ≥ 29.</summary>
    public static DockerStack Docker26Snapshotter { get; } = new("dockerd 26 + containerd 1.7 snapshotter", Modern: true, Snapshotter: true);

    /// <summary>Debian 13's dockerd 26 (--experimental) on the graphdriver plugin, which it still loads (dockerd 27
    /// only with DOCKERD_DEPRECATED_GRAPHDRIVER_PLUGINS=1).</summary>
    public static DockerStack Docker26Plugin { get; } = new("dockerd 26 + graphdriver plugin", Modern: true, Snapshotter: false);

    public override string ToString() => Name;
}
