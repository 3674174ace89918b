using System.Diagnostics;
using BlockDriver.Nbd;
using BlockDriver.Vhdx;

namespace BlockDriver.NbdBench;

/// <summary>An NBD server under test, listening on a unix socket: ours in-process over the VHDX chain, or qemu-nbd
/// over the qcow2 chain. Disposing stops it.</summary>
internal sealed class Target : IAsyncDisposable
{
    private readonly NbdServer? _server;
    private readonly VhdxDisk? _disk;
    private readonly Process? _qemuNbd;

    private Target(string name, string socket, NbdServer? server, VhdxDisk? disk, Process? qemuNbd)
    {
        Name = name;
        Socket = socket;
        _server = server;
        _disk = disk;
        _qemuNbd = qemuNbd;
    }

    public string Name { get; }

    public string Socket { get; }

    public string Uri => $"nbd+unix:///?socket={Socket}";

    /// <summary>Whether the server advertises NBD_FLAG_CAN_MULTI_CONN for the export (<c>nbdinfo --can multi-conn</c>:
    /// exit 0 yes, 2 no); nbdfuse opens more than one connection only when it does.</summary>
    public async Task<bool> CanMultiConnAsync()
    {
        int code = await Shell.ExitCodeAsync("nbdinfo", "--can", "multi-conn", Uri).ConfigureAwait(false);
        return code switch
        {
            0 => true,
            2 => false,
            _ => throw new InvalidOperationException($"nbdinfo --can multi-conn {Uri} exited {code}."),
        };
    }

    public static Target StartOurs(string vhdx, string socket)
    {
        VhdxDisk disk = VhdxDisk.Open(vhdx);
        var server = new NbdServer([new NbdExport("bench", disk)]);
        server.ListenUnix(socket);
        return new Target("blockdriver", socket, server, disk, null);
    }

    public static async Task<Target> StartQemuNbdAsync(string qcow2, string socket)
    {
        // --shared: room for nbdfuse's connections; writeback cache and thread-pool AIO are qemu-nbd's defaults.
        Process process = Shell.Start("qemu-nbd", "-f", "qcow2", "--socket", socket, "--shared", "8", "--persistent", qcow2);
        var target = new Target("qemu-nbd", socket, null, null, process);
        try
        {
            await Shell.WaitForAsync(() => File.Exists(socket) || process.HasExited, "qemu-nbd's socket").ConfigureAwait(false);
            if (process.HasExited)
            {
                throw new InvalidOperationException($"qemu-nbd exited with {process.ExitCode}.");
            }

            return target;
        }
        catch
        {
            await target.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }

        if (_disk is not null)
        {
            await _disk.DisposeAsync().ConfigureAwait(false);
        }

        if (_qemuNbd is not null)
        {
            if (!_qemuNbd.HasExited)
            {
                _qemuNbd.Kill();
            }

            await _qemuNbd.WaitForExitAsync().ConfigureAwait(false);
            _qemuNbd.Dispose();
            File.Delete(Socket);
        }
    }
}
