using System.Security.Cryptography;
using Xunit.Abstractions;

namespace BlockDriver.Nbd.Tests.Support;

/// <summary>Per-test directory plus the chain every real-client test starts from: base.vhdx (64 MiB, data written
/// through our own server by qemu-io: 0x11 over [0, 1 MiB), 0x12 over [5 MiB, 7 MiB)) and top.vhdx, an empty
/// differencing child (the writable container layer).</summary>
public abstract class RealClientFixture : IAsyncLifetime
{
    protected const int MiB = 1 << 20;

    protected RealClientFixture(ITestOutputHelper output)
    {
        Output = output;
        Temp = new TempDirectory("nbd-client");
    }

    protected ITestOutputHelper Output { get; }

    protected TempDirectory Temp { get; }

    protected string Dir => Temp.FullName;

    protected string PathOf(string name) => Temp.GetFilePath(name);

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual Task DisposeAsync()
    {
        Temp.Dispose();
        return Task.CompletedTask;
    }

    protected Task<ServeProcess> ServeAsync(params string[] args) =>
        ServeProcess.StartAsync(Output, Dir, PathOf("nbd.sock"), args);

    /// <summary>Creates base.vhdx with data and an empty child top.vhdx.</summary>
    protected async Task CreateChainAsync()
    {
        await BlockDriverCli.RunOkAsync(Output, Dir, "img", "create", "base.vhdx", "64M");
        await using (ServeProcess server = await ServeAsync("base.vhdx"))
        {
            await Tool.RunOkAsync(Output, "qemu-io", "-f", "raw", "-c", "write -P 0x11 0 1M", "-c", "write -P 0x12 5M 2M", "-c", "flush", server.Uri());
            await server.StopAsync();
        }

        await BlockDriverCli.RunOkAsync(Output, Dir, "img", "create", "-b", "base.vhdx", "top.vhdx");
    }

    protected static string Sha256(string path)
    {
        using FileStream stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream));
    }

    /// <summary>The content of a VHDX read offline by <c>blockdriver img convert</c>.</summary>
    protected async Task<byte[]> ReadOfflineAsync(string vhdx)
    {
        string raw = PathOf(Path.GetFileNameWithoutExtension(vhdx) + "-offline.raw");
        File.Delete(raw);
        await BlockDriverCli.RunOkAsync(Output, Dir, "img", "convert", vhdx, raw);
        return await File.ReadAllBytesAsync(raw);
    }

    protected static void AssertFilled(byte[] content, long offset, long length, byte value)
    {
        int bad = content.AsSpan((int)offset, (int)length).IndexOfAnyExcept(value);
        if (bad >= 0)
        {
            Assert.Fail($"byte at {offset + bad} is 0x{content[offset + bad]:x2}, expected 0x{value:x2} over [{offset}, +{length})");
        }
    }
}
