using System.Diagnostics;
using System.Globalization;

namespace BlockDriver.NbdBench;

/// <summary>nbdfuse (the given number of connections when the server advertises multi-conn, else one) exposing the export as a file, and a loop
/// device over that file with direct I/O, so fio's O_DIRECT requests reach the server instead of a page cache.
/// Disposing detaches the loop device and unmounts FUSE, whatever state the setup reached.</summary>
internal sealed class LoopStack : IAsyncDisposable
{
    private readonly string _fuseDirectory;
    private Process? _nbdfuse;
    private string? _loop;

    private LoopStack(string fuseDirectory)
    {
        _fuseDirectory = fuseDirectory;
    }

    public string Device => _loop ?? throw new InvalidOperationException("Not attached.");

    public static async Task<LoopStack> StartAsync(string uri, string fuseDirectory, int connections)
    {
        Directory.CreateDirectory(fuseDirectory);
        string pidFile = fuseDirectory + ".pid";
        File.Delete(pidFile);
        var stack = new LoopStack(fuseDirectory);
        try
        {
            stack._nbdfuse = Shell.Start("nbdfuse", "-C", connections.ToString(CultureInfo.InvariantCulture), "-P", pidFile, fuseDirectory, uri);
            await Shell.WaitForAsync(() => File.Exists(pidFile) || stack._nbdfuse.HasExited, "nbdfuse").ConfigureAwait(false);
            if (stack._nbdfuse.HasExited)
            {
                throw new InvalidOperationException($"nbdfuse exited with {stack._nbdfuse.ExitCode}.");
            }

            string file = Path.Combine(fuseDirectory, "nbd");
            stack._loop = (await Shell.RunAsync("losetup", "--find", "--show", "--direct-io=on", file).ConfigureAwait(false)).Trim();
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
        if (_loop is { } loop)
        {
            _loop = null;
            await Shell.RunAsync("losetup", "-d", loop).ConfigureAwait(false);
        }

        if (_nbdfuse is { } process)
        {
            _nbdfuse = null;
            if (!process.HasExited)
            {
                await Shell.RunAsync("fusermount3", "-u", _fuseDirectory).ConfigureAwait(false);
            }

            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            process.Dispose();
        }
    }
}
