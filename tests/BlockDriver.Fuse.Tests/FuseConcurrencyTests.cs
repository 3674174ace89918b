using BlockDriver.Abstractions;
using Microsoft.Win32.SafeHandles;

namespace BlockDriver.Fuse.Tests;

[Collection(FuseTestCollection.Name)]
public sealed class FuseConcurrencyTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public async Task Each_reader_thread_serves_a_request_at_the_same_time(int threads)
    {
        await using var device = new RendezvousBlockDevice(new MemoryBlockDevice(1 << 20), threads);
        await using MountedServer mounted = await MountedServer.StartAsync(new FuseServerOptions { WorkerThreads = threads });
        mounted.Server.AddFile("disk", device);
        using SafeFileHandle file = File.OpenHandle(mounted.PathOf("disk"));

        // Each read blocks a reader thread until all of them are blocked: this completes only if `threads` readers
        // (the /dev/fuse fd and its clones) each took one request.
        int[] read = await Task.WhenAll(Enumerable.Range(0, threads).Select(i => Task.Factory.StartNew(
            () => RandomAccess.Read(file, new byte[4096], i * 4096L), TaskCreationOptions.LongRunning)));

        Assert.All(read, n => Assert.Equal(4096, n));
    }

    [Fact]
    public async Task The_default_options_serve_four_requests_at_the_same_time_on_any_machine()
    {
        // A reader waiting in a device call (a pwrite behind the image's inode lock, a commit's fsync) must not stall
        // the queue: the default has at least four readers, whatever the processor count.
        var options = new FuseServerOptions();
        Assert.InRange(options.WorkerThreads, 4, 8);
        await using var device = new RendezvousBlockDevice(new MemoryBlockDevice(1 << 20), 4);
        await using MountedServer mounted = await MountedServer.StartAsync(options);
        mounted.Server.AddFile("disk", device);
        using SafeFileHandle file = File.OpenHandle(mounted.PathOf("disk"));

        int[] read = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => Task.Factory.StartNew(
            () => RandomAccess.Read(file, new byte[4096], i * 4096L), TaskCreationOptions.LongRunning)));

        Assert.All(read, n => Assert.Equal(4096, n));
    }
}
