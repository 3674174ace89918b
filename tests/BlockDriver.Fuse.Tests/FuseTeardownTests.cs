using System.Diagnostics;
using BlockDriver.Abstractions;
using BlockDriver.Testing;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Fuse.Tests;

/// <summary>Unmounting: normal disposal, disposal while a file is held, a second server on a live mount, a stale
/// mount left by a killed server process, and SIGTERM.</summary>
[Collection(FuseTestCollection.Name)]
public sealed class FuseTeardownTests : IDisposable
{
    private readonly TempDirectory _temp = new(FuseTestCollection.TempPrefix);
    private readonly string _mountPoint;

    public FuseTeardownTests()
    {
        _mountPoint = _temp.GetFilePath("mnt");
        Directory.CreateDirectory(_mountPoint);
    }

    public void Dispose()
    {
        MountedServer.ForceUnmountAsync(_mountPoint).GetAwaiter().GetResult();
        _temp.Dispose();
    }

    [Fact]
    public async Task Dispose_unmounts_and_the_directory_is_plain_again()
    {
        await using var device = new MemoryBlockDevice(1 << 20);
        FuseDeviceServer server = await FuseDeviceServer.MountAsync(_mountPoint);
        server.AddFile("disk", device);
        Assert.Single(FuseMounts.FindAt(_mountPoint));
        Assert.True(server.ConnectionId > 0);

        await server.DisposeAsync();
        await server.DisposeAsync();

        Assert.Empty(FuseMounts.FindAt(_mountPoint));
        Assert.Empty(Directory.GetFileSystemEntries(_mountPoint));
    }

    [Fact]
    public async Task Dispose_with_a_file_still_open_detaches_and_ends_the_connection()
    {
        await using var device = new MemoryBlockDevice(1 << 20);
        FuseDeviceServer server = await FuseDeviceServer.MountAsync(_mountPoint, new FuseServerOptions { TeardownTimeout = TimeSpan.FromSeconds(1) });
        server.AddFile("disk", device);
        using SafeFileHandle held = File.OpenHandle(server.GetFilePath("disk"));
        Assert.Equal(4096, RandomAccess.Read(held, new byte[4096], 0));

        var stopwatch = Stopwatch.StartNew();
        await server.DisposeAsync();

        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(20), $"Teardown took {stopwatch.Elapsed}.");
        Assert.Empty(FuseMounts.FindAt(_mountPoint));
        // The connection was aborted: the held file fails instead of hanging.
        Assert.Throws<IOException>(() => RandomAccess.Read(held, new byte[4096], 0));
    }

    [Fact]
    public async Task A_second_server_on_a_live_mount_is_refused_and_the_first_keeps_serving()
    {
        await using var device = new MemoryBlockDevice(1 << 20);
        await using FuseDeviceServer first = await FuseDeviceServer.MountAsync(_mountPoint);
        first.AddFile("disk", device);

        BlockDriverException refused = await Assert.ThrowsAsync<BlockDriverException>(() => FuseDeviceServer.MountAsync(_mountPoint));

        Assert.Equal(ErrorKind.InUse, refused.Kind);
        Assert.Single(FuseMounts.FindAt(_mountPoint));
        Assert.True(File.Exists(first.GetFilePath("disk")));
    }

    [Fact]
    public async Task Mounting_on_a_missing_directory_is_refused()
    {
        BlockDriverException refused = await Assert.ThrowsAsync<BlockDriverException>(
            () => FuseDeviceServer.MountAsync(_temp.GetFilePath("missing")));

        Assert.Equal(ErrorKind.NotFound, refused.Kind);
    }

    [Fact]
    public async Task A_stale_mount_left_by_a_killed_server_is_cleaned_by_the_next_mount()
    {
        using (Process child = await StartServerProcessAsync())
        {
            child.Kill();
            await child.WaitForExitAsync();
        }

        // The dead server's mount is still in the table and every access fails with ENOTCONN.
        Assert.Single(FuseMounts.FindAt(_mountPoint));
        Assert.False(Directory.Exists(_mountPoint));

        await using var device = new MemoryBlockDevice(1 << 20);
        await using FuseDeviceServer server = await FuseDeviceServer.MountAsync(_mountPoint);
        server.AddFile("disk", device);

        Assert.Single(FuseMounts.FindAt(_mountPoint));
        Assert.Equal(1 << 20, new FileInfo(server.GetFilePath("disk")).Length);
    }

    [Fact]
    public async Task Cleanup_of_stale_mounts_removes_stacked_dead_mounts_and_nothing_else()
    {
        // Two dead mounts stacked on the directory, as mount(2) + exit without serving leaves them.
        TestNative.MountDeadFuse(_mountPoint);
        TestNative.MountDeadFuse(_mountPoint);
        Assert.Equal(2, FuseMounts.FindAt(_mountPoint).Count);

        Assert.Equal(0, await FuseMounts.CleanupStaleAsync(_temp.FullName));
        Assert.Equal(2, await FuseMounts.CleanupStaleAsync(_mountPoint));
        Assert.Empty(FuseMounts.FindAt(_mountPoint));
        Assert.True(Directory.Exists(_mountPoint));
    }

    [Fact]
    public async Task Sigterm_unmounts_before_the_process_exits()
    {
        using Process child = await StartServerProcessAsync();

        Assert.Equal(0, TestNative.Kill(child.Id, TestNative.SigTerm));
        await child.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Empty(FuseMounts.FindAt(_mountPoint));
        Assert.True(Directory.Exists(_mountPoint));
    }

    // Runs this test assembly as a server process (Program.Main) on the mount point and waits for "ready".
    private async Task<Process> StartServerProcessAsync()
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(typeof(FuseTeardownTests).Assembly.Location);
        start.ArgumentList.Add("serve");
        start.ArgumentList.Add(_mountPoint);
        var process = Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
        try
        {
            string? line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            if (line != "ready")
            {
                string error = await process.StandardError.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10));
                throw new InvalidOperationException($"The server process printed \"{line}\" instead of ready: {error}");
            }

            return process;
        }
        catch
        {
            process.Kill();
            process.Dispose();
            throw;
        }
    }
}
