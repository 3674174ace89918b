using System.Diagnostics;

namespace BlockDriver.Core;

/// <summary>Named points inside multi-step operations where the crash tests kill the process: when the
/// environment variable BLOCKDRIVER_CRASH_AT equals a point's name ("create.file", "merge.renamed", …), the process
/// SIGKILLs itself there, exactly as a power cut or kill -9 would stop it. Unset (always, outside tests), a point is
/// one string comparison.</summary>
internal static class CrashPoints
{
    private static readonly string? Armed = Environment.GetEnvironmentVariable("BLOCKDRIVER_CRASH_AT");

    /// <summary>Dies here if armed for <paramref name="name"/>.</summary>
    public static void Hit(string name)
    {
        if (Armed is not null && string.Equals(Armed, name, StringComparison.Ordinal))
        {
            Process.GetCurrentProcess().Kill();
            Thread.Sleep(Timeout.Infinite);
        }
    }
}
