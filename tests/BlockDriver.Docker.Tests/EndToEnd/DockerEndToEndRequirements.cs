namespace BlockDriver.Docker.Tests.EndToEnd;

/// <summary>What the end-to-end tests need on the host: root, dockerd, /usr/bin/docker and containerd from Debian's
/// docker.io and containerd, /bin/busybox from busybox-static.</summary>
internal static class DockerEndToEndRequirements
{
    /// <summary>Missing requirements, one phrase each; empty when the tests can run.</summary>
    public static IReadOnlyList<string> Missing() =>
    [
        .. Environment.UserName == "root" ? Array.Empty<string>() : ["root"],
        .. Dockerd.MissingPrograms(),
        .. File.Exists(ImageTars.Busybox) ? Array.Empty<string>() : [ImageTars.Busybox],
    ];

    /// <summary>The reason given for skipping, or for failing in CI.</summary>
    public static string Explain(IReadOnlyList<string> missing) =>
        $"Docker end-to-end tests need {string.Join(", ", missing)}: run as root with apt-get install docker.io containerd busybox-static (.ci/run installs them).";

    public static void ThrowIfMissing()
    {
        IReadOnlyList<string> missing = Missing();
        if (missing.Count > 0)
        {
            throw new InvalidOperationException(Explain(missing));
        }
    }
}

/// <summary>
/// A fact that needs a real dockerd. Outside CI, on a machine without docker.io / containerd / busybox-static or not
/// root, it is skipped with the reason; with <c>CI=true</c> it always runs, so a CI machine missing them fails with the
/// same reason instead of passing silently.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class DockerFactAttribute : FactAttribute
{
    public DockerFactAttribute()
    {
        IReadOnlyList<string> missing = DockerEndToEndRequirements.Missing();
        if (missing.Count > 0 && !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Skip = DockerEndToEndRequirements.Explain(missing);
        }
    }
}

/// <summary>A theory that needs a real dockerd; skipped or failed as <see cref="DockerFactAttribute"/>.</summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class DockerTheoryAttribute : TheoryAttribute
{
    public DockerTheoryAttribute()
    {
        IReadOnlyList<string> missing = DockerEndToEndRequirements.Missing();
        if (missing.Count > 0 && !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Skip = DockerEndToEndRequirements.Explain(missing);
        }
    }
}
