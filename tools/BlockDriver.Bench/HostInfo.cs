using System.Runtime.InteropServices;

namespace BlockDriver.Bench;

/// <summary>What the report says about the machine, so that numbers from different hosts are not compared blindly.</summary>
internal static class HostInfo
{
    public static string Describe() =>
        $"{RuntimeInformation.OSDescription}, {Environment.ProcessorCount} CPUs, .NET {Environment.Version}";

    /// <summary>The 1-minute load average from /proc/loadavg ("?" elsewhere): other work on the host makes the
    /// timings noisy, and the report says how busy the host was.</summary>
    public static string LoadAverage()
    {
        const string Path = "/proc/loadavg";
        return File.Exists(Path) ? File.ReadAllText(Path).Split(' ')[0] : "?";
    }
}
