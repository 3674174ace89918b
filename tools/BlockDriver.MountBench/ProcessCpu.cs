using System.Globalization;

namespace BlockDriver.MountBench;

/// <summary>CPU time of processes from /proc/PID/stat: utime + stime (fields 14 and 15, in clock ticks of
/// 1/100 s, the CLK_TCK of Linux on x86-64 and arm64).</summary>
internal static class ProcessCpu
{
    private const double TicksPerSecond = 100;

    /// <summary>User + system CPU seconds the given processes have used so far.</summary>
    public static double Seconds(IEnumerable<int> pids)
    {
        double total = 0;
        foreach (int pid in pids)
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) is in parentheses and may hold spaces; count fields after the last ')'.
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // fields[0] is field 3 (state), so utime (14) is fields[11] and stime (15) fields[12].
            total += (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
        }

        return total;
    }
}
