using BlockDriver.Nbd;

namespace BlockDriver.Daemon;

/// <summary>The daemon's optional NBD server (section <c>Nbd</c>): when <see cref="Socket"/> is set, the layers in
/// <see cref="Exports"/> are served on that unix socket under their ids while the daemon runs.</summary>
public sealed class DaemonNbdOptions
{
    /// <summary>The unix socket to listen on; relative paths are relative to the store. Null: no NBD server.</summary>
    public string? Socket { get; set; }

    /// <summary>Layer ids to export. Each is opened on a client's first request and kept open until the daemon
    /// stops; sealed layers are read-only, writable ones writable unless <see cref="ReadOnly"/>.</summary>
    public IList<string> Exports { get; } = [];

    /// <summary>Refuse writes to every export.</summary>
    public bool ReadOnly { get; set; }

    /// <summary>Close a connection whose client has not read a reply for this long (<see cref="TimeSpan.Zero"/>:
    /// never). Default 30 s (<see cref="NbdServerOptions.SendTimeout"/>).</summary>
    public TimeSpan SendTimeout { get; set; } = new NbdServerOptions().SendTimeout;

    /// <summary>Close a connection that sent no request for this long. Default <see cref="TimeSpan.Zero"/>, never
    /// (<see cref="NbdServerOptions.IdleTimeout"/>).</summary>
    public TimeSpan IdleTimeout { get; set; } = new NbdServerOptions().IdleTimeout;
}
