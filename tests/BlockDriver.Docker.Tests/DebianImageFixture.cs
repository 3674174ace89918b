using System.Collections.Concurrent;
using System.Diagnostics;
using BlockDriver.Docker.Tests.EndToEnd;
using Xunit.Abstractions;

namespace BlockDriver.Docker.Tests;

/// <summary>
/// One Docker stack for a whole test class (starting dockerds and importing 510 MB twice per test would take minutes):
/// a <see cref="DockerEnvironment"/> on <see cref="Stack"/>, its overlayfs reference dockerd of the same version, and
/// the Debian 12 rootfs (<see cref="DebianRootfs"/>) imported into both as <see cref="Image"/>. Disposing runs the
/// environment's teardown, which fails the class if anything was left on the host.
/// </summary>
public abstract class DebianImageFixture : IAsyncLifetime
{
    /// <summary>The imported rootfs's name in both dockerds.</summary>
    public const string Image = "deb:local";

    private readonly ConcurrentQueue<string> _setup = new();
    private DockerEnvironment? _env;
    private Dockerd? _reference;
    private bool _setupShown;

    internal abstract DockerStack Stack { get; }

    internal DockerEnvironment Env => _env ?? throw new InvalidOperationException("the fixture did not start");

    /// <summary>The same dockerd version on the kernel's overlayfs.</summary>
    internal Dockerd Reference => _reference ?? throw new InvalidOperationException("the fixture did not start");

    /// <summary>The rootfs directory the image was imported from.</summary>
    internal string Rootfs { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var watch = Stopwatch.StartNew();
        Rootfs = await DebianRootfs.DirectoryAsync(_setup.Enqueue, CancellationToken.None);
        string tar = await DebianRootfs.TarAsync(_setup.Enqueue, CancellationToken.None);
        _setup.Enqueue($"rootfs ready after {watch.Elapsed.TotalSeconds:F1} s");
        _env = await DockerEnvironment.StartAsync(null, Stack);
        _reference = await _env.OverlayAsync();
        _setup.Enqueue($"{Stack} and its reference started after {watch.Elapsed.TotalSeconds:F1} s");
        var imports = Stopwatch.StartNew();
        Task<string> blockdriver = _env.Docker.RunOkAsync(null, TimeSpan.FromMinutes(5), "import", tar, Image);
        await _reference.RunOkAsync(null, TimeSpan.FromMinutes(5), "import", tar, Image);
        _setup.Enqueue($"reference import done after {imports.Elapsed.TotalSeconds:F1} s");
        await blockdriver;
        _setup.Enqueue($"blockdriver import done after {imports.Elapsed.TotalSeconds:F1} s; fixture ready after {watch.Elapsed.TotalSeconds:F1} s");
    }

    /// <summary>Sends the environment's lines to <paramref name="output"/> (the running test), the setup's lines
    /// first time.</summary>
    internal void Attach(ITestOutputHelper output)
    {
        Env.Output = output;
        if (!_setupShown)
        {
            _setupShown = true;
            foreach (string line in _setup)
            {
                output.WriteLine(line);
            }
        }
    }

    public async Task DisposeAsync()
    {
        if (_env is not null)
        {
            _env.Output = null;
            await _env.DisposeAsync();
        }
    }
}
