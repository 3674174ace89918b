using System.Globalization;

namespace BlockDriver.MountBench;

/// <summary>A qcow2 chain mounted the qemu way: qemu-nbd on a unix socket (its defaults: writeback cache, thread-pool
/// AIO, i.e. the host page cache like the blockdriver daemon's buffered VHDX I/O; <c>--shared 8</c> leaves a slot
/// beyond nbdfuse's 4 connections), <c>nbdfuse -C 4</c> exposing the export as a file, and <see cref="LoopMount"/>
/// over that file. Disposing unmounts, detaches, unmounts FUSE and stops qemu-nbd.</summary>
internal sealed class QemuStack : IAsyncDisposable
{
    public const int Connections = 4;
    private readonly string _fuseDirectory;
    private readonly string _socket;
    private Shell.Server? _qemuNbd;
    private Shell.Server? _nbdfuse;
    private int _nbdfusePid;
    private LoopMount? _mount;

    private QemuStack(string fuseDirectory, string socket)
    {
        _fuseDirectory = fuseDirectory;
        _socket = socket;
    }

    public LoopMount Mount => _mount ?? throw new InvalidOperationException("Not mounted.");

    /// <summary>qemu-nbd and nbdfuse: the processes that serve the I/O.</summary>
    public IReadOnlyList<int> ServerPids => [_qemuNbd!.Pid, _nbdfusePid];

    public static async Task<QemuStack> StartAsync(string qcow2, string work, string directory, CancellationToken ct)
    {
        var stack = new QemuStack(Path.Combine(work, "nbdfuse"), Path.Combine(work, "qemu-nbd.sock"));
        try
        {
            File.Delete(stack._socket);
            stack._qemuNbd = Shell.Start("qemu-nbd", "-f", "qcow2", "--socket", stack._socket, "--shared", "8", "--persistent", qcow2);
            await Shell.WaitForAsync(() => File.Exists(stack._socket) || stack._qemuNbd.Process.HasExited, "qemu-nbd's socket").ConfigureAwait(false);
            if (stack._qemuNbd.Process.HasExited)
            {
                throw new InvalidOperationException($"qemu-nbd exited with {stack._qemuNbd.Process.ExitCode}: {stack._qemuNbd.Output}");
            }

            Directory.CreateDirectory(stack._fuseDirectory);
            string pidFile = stack._fuseDirectory + ".pid";
            File.Delete(pidFile);
            stack._nbdfuse = Shell.Start("nbdfuse", "-C", Connections.ToString(CultureInfo.InvariantCulture), "-P", pidFile,
                stack._fuseDirectory, $"nbd+unix:///?socket={stack._socket}");
            await Shell.WaitForAsync(() => File.Exists(pidFile) || stack._nbdfuse.Process.HasExited, "nbdfuse").ConfigureAwait(false);
            if (stack._nbdfuse.Process.HasExited)
            {
                throw new InvalidOperationException($"nbdfuse exited with {stack._nbdfuse.Process.ExitCode}: {stack._nbdfuse.Output}");
            }

            await Shell.WaitForAsync(() => File.ReadAllText(pidFile).Trim().Length > 0, "nbdfuse's pid file").ConfigureAwait(false);
            stack._nbdfusePid = int.Parse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture);
            stack._mount = await LoopMount.StartAsync(Path.Combine(stack._fuseDirectory, "nbd"), directory, format: false, ct).ConfigureAwait(false);
            return stack;
        }
        catch
        {
            await stack.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_mount is { } mount)
        {
            _mount = null;
            await mount.DisposeAsync().ConfigureAwait(false);
        }

        if (_nbdfuse is { } nbdfuse)
        {
            _nbdfuse = null;
            if (!nbdfuse.Process.HasExited)
            {
                await Shell.RunAsync("fusermount3", "-u", _fuseDirectory).ConfigureAwait(false);
            }

            await nbdfuse.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            nbdfuse.Process.Dispose();
        }

        if (_qemuNbd is { } qemuNbd)
        {
            _qemuNbd = null;
            await qemuNbd.StopAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            qemuNbd.Process.Dispose();
            File.Delete(_socket);
        }
    }
}
