using BlockDriver.Testing;

namespace BlockDriver.Fuse.Tests;

/// <summary>A FUSE server mounted on a fresh temporary directory. Disposal unmounts, lazily unmounts whatever is
/// still mounted there (a test that failed half-way), then deletes the directory.</summary>
internal sealed class MountedServer : IAsyncDisposable
{
    private MountedServer(TempDirectory temp, string mountPoint, FuseDeviceServer server)
    {
        Temp = temp;
        MountPoint = mountPoint;
        Server = server;
    }

    public TempDirectory Temp { get; }

    public string MountPoint { get; }

    public FuseDeviceServer Server { get; }

    public static async Task<MountedServer> StartAsync(FuseServerOptions? options = null)
    {
        var temp = new TempDirectory(FuseTestCollection.TempPrefix);
        string mountPoint = temp.GetFilePath("mnt");
        Directory.CreateDirectory(mountPoint);
        try
        {
            FuseDeviceServer server = await FuseDeviceServer.MountAsync(mountPoint, options);
            return new MountedServer(temp, mountPoint, server);
        }
        catch
        {
            temp.Dispose();
            throw;
        }
    }

    public string PathOf(string name) => Server.GetFilePath(name);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Server.DisposeAsync();
        }
        finally
        {
            await ForceUnmountAsync(MountPoint);
            Temp.Dispose();
        }
    }

    /// <summary>Lazily unmounts every mount still at <paramref name="mountPoint"/>; for cleanup after failures.</summary>
    public static async Task ForceUnmountAsync(string mountPoint)
    {
        for (int i = 0; i < 8 && FuseMounts.FindAt(mountPoint).Count > 0; i++)
        {
            await ChildProcess.RunAsync("umount", ["-l", mountPoint], "/");
        }
    }
}
