using BlockDriver.Abstractions;
using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests.Support;

/// <summary>An in-process <see cref="NbdServer"/> on a unix socket in a per-test temporary directory.
/// <see cref="DisposeAsync"/> stops the server and deletes the directory, whether or not the test passed.</summary>
public sealed class ServerHarness : IAsyncDisposable
{
    private readonly TestOutputLogger<NbdServer> _logger;

    public ServerHarness(ITestOutputHelper output, IEnumerable<NbdExport> exports, NbdServerOptions? options = null)
    {
        Temp = new TempDirectory("nbd");
        _logger = new TestOutputLogger<NbdServer>(output);
        Server = new NbdServer(exports, options, _logger);
        SocketPath = Temp.GetFilePath("nbd.sock");
        Server.ListenUnix(SocketPath);
    }

    public TempDirectory Temp { get; }

    public NbdServer Server { get; }

    public string SocketPath { get; }

    /// <summary>A server with one writable memory export "mem" (and it is the default export).</summary>
    public static ServerHarness WithMemory(ITestOutputHelper output, out MemoryBlockDevice device, long length = 16 << 20,
        int sectorSize = 512, NbdServerOptions? options = null)
    {
        device = new MemoryBlockDevice(length, sectorSize);
        return new ServerHarness(output, [new NbdExport("mem", device) { Description = "memory test export" }], options);
    }

    public Task<RawNbdClient> ConnectAsync() => RawNbdClient.ConnectAsync(SocketPath);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Server.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            _logger.Close();
            Temp.Dispose();
        }
    }
}
