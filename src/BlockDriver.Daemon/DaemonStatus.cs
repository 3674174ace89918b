namespace BlockDriver.Daemon;

/// <summary>The body of <c>GET /v1/status</c>: which daemon answers, and with which settings.</summary>
/// <param name="Pid">The daemon's process id.</param>
/// <param name="Root">The store directory.</param>
/// <param name="StartedAt">When the daemon became ready.</param>
/// <param name="Remount">The <see cref="DaemonOptions.Remount"/> setting.</param>
/// <param name="NbdSocket">The NBD server's socket, or null when the daemon serves no NBD.</param>
/// <param name="NbdExports">The layers exported over NBD.</param>
/// <param name="Recovered">The mounts made again at start after a daemon died with them.</param>
public sealed record DaemonStatus(int Pid, string Root, DateTimeOffset StartedAt, bool Remount, string? NbdSocket, IReadOnlyList<string> NbdExports, int Recovered);
