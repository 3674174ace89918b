namespace BlockDriver.MountBench;

/// <summary>The real <c>blockdriver</c> CLI built beside this tool (<c>dotnet blockdriver.dll</c>) on one store: a
/// running <c>blockdriver daemon</c> and one-shot commands (layer create/seal/rm, mount, umount) that go through
/// it. Disposing stops the daemon with SIGTERM, which unmounts whatever is still mounted.</summary>
internal sealed class BlockDriverDaemon : IAsyncDisposable
{
    private static readonly string CliPath = Path.Combine(AppContext.BaseDirectory, "blockdriver.dll");
    private Shell.Server? _daemon;

    private BlockDriverDaemon(string root)
    {
        Root = root;
    }

    public string Root { get; }

    public int Pid => _daemon?.Pid ?? throw new InvalidOperationException("The daemon is not running.");

    /// <summary>Where layer <paramref name="id"/>'s VHDX file lives.</summary>
    public string LayerFile(string id) => Path.Combine(Root, "layers", id + ".vhdx");

    public static async Task<BlockDriverDaemon> StartAsync(string root, CancellationToken ct)
    {
        var daemon = new BlockDriverDaemon(root);
        try
        {
            daemon._daemon = Shell.Start("dotnet", CliPath, "--root", root, "daemon");
            await Shell.WaitForAsync(() => daemon._daemon.HasLine("ready:") || daemon._daemon.Process.HasExited, "the blockdriver daemon").WaitAsync(ct).ConfigureAwait(false);
            if (daemon._daemon.Process.HasExited)
            {
                throw new InvalidOperationException($"blockdriver daemon exited with {daemon._daemon.Process.ExitCode}:\n{daemon._daemon.Output}");
            }

            return daemon;
        }
        catch
        {
            await daemon.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Runs <c>blockdriver --root STORE ARGS</c>; returns its standard output, trimmed.</summary>
    public async Task<string> CliAsync(CancellationToken ct, params string[] args) =>
        (await Shell.RunAsync("dotnet", [CliPath, "--root", Root, .. args], ct).ConfigureAwait(false)).Trim();

    public async ValueTask DisposeAsync()
    {
        if (_daemon is { } daemon)
        {
            _daemon = null;
            await daemon.StopAsync(TimeSpan.FromMinutes(2)).ConfigureAwait(false);
            int code = daemon.Process.ExitCode;
            daemon.Process.Dispose();
            if (code != 0)
            {
                throw new InvalidOperationException($"blockdriver daemon exited {code} on SIGTERM:\n{daemon.Output}");
            }
        }
    }
}
