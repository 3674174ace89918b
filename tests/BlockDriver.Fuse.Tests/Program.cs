using BlockDriver.Abstractions;

namespace BlockDriver.Fuse.Tests;

/// <summary>The test assembly doubles as a FUSE server for tests that need one in another process:
/// <c>dotnet BlockDriver.Fuse.Tests.dll serve MOUNTPOINT</c> mounts a server with a 1 MiB file "disk", prints
/// "ready" and serves until killed (or until stdin closes). The test host never calls this.</summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args is not ["serve", string mountPoint])
        {
            await Console.Error.WriteLineAsync("usage: serve MOUNTPOINT");
            return 2;
        }

        await using var device = new MemoryBlockDevice(1 << 20);
        await using FuseDeviceServer server = await FuseDeviceServer.MountAsync(mountPoint, new FuseServerOptions { UnmountOnSigterm = true });
        server.AddFile("disk", device);
        Console.WriteLine("ready");
        Console.Out.Flush();
        // Serve until stdin reaches end of file; a test ends the process with a signal instead.
        await Console.In.ReadToEndAsync();
        return 0;
    }
}
