namespace BlockDriver.Containerd.Tests;

/// <summary>What <see cref="ContainerdSuiteTests"/> needs: root (the suite mounts), Go (golang-go) and containerd's Go
/// sources with the suite (golang-github-containerd-containerd-dev, under /usr/share/gocode).</summary>
internal static class SuiteRequirements
{
    public static IReadOnlyList<string> Missing() =>
    [
        .. Environment.UserName == "root" ? Array.Empty<string>() : ["root"],
        .. ChildProcess.Locate("go") is null ? ["go (golang-go)"] : Array.Empty<string>(),
        .. File.Exists(ContainerdSuiteTests.TestsuiteSource) ? Array.Empty<string>() : [$"{ContainerdSuiteTests.TestsuiteSource} (golang-github-containerd-containerd-dev)"],
    ];

    /// <summary>Null when everything is there or <c>CI=true</c> (where a missing piece must fail the test, not skip
    /// it); else why the test is skipped.</summary>
    public static string? SkipReason()
    {
        IReadOnlyList<string> missing = Missing();
        if (missing.Count == 0 || string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        return $"containerd's snapshotter testsuite needs {string.Join(", ", missing)}: run as root with apt-get install golang-go golang-github-containerd-containerd-dev (.ci/run installs them).";
    }
}
