namespace BlockDriver.Containerd.Tests;

/// <summary>
/// A fact that needs Debian's containerd 1.6 (/usr/bin/containerd, ctr, containerd-shim-runc-v2, runc), busybox-static
/// and root. Outside CI, on a machine without them, it is skipped with the reason; with <c>CI=true</c> it always runs,
/// so a CI machine missing them fails with the same reason instead of passing silently.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class ContainerdFactAttribute : FactAttribute
{
    public static readonly string[] Programs = ["/usr/bin/containerd", "/usr/bin/ctr", "/usr/bin/containerd-shim-runc-v2"];

    public ContainerdFactAttribute()
    {
        IReadOnlyList<string> missing = Missing();
        if (missing.Count > 0 && !string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Skip = Explain(missing);
        }
    }

    public static IReadOnlyList<string> Missing() =>
    [
        .. Environment.UserName == "root" ? Array.Empty<string>() : ["root"],
        .. Programs.Where(p => !File.Exists(p)),
        .. ChildProcess.Locate("runc") is null ? ["runc"] : Array.Empty<string>(),
        .. File.Exists(ImageArchive.Busybox) ? Array.Empty<string>() : [ImageArchive.Busybox],
    ];

    public static string Explain(IReadOnlyList<string> missing) =>
        $"containerd end-to-end tests need {string.Join(", ", missing)}: run as root with apt-get install containerd runc busybox-static (.ci/run installs them).";
}
