using BlockDriver.Abstractions;
using BlockDriver.Testing;

namespace BlockDriver.Fuse.Tests;

/// <summary>The shared device suite, run on a file of a FUSE mount opened as a <see cref="FileBlockDevice"/>: every
/// request goes through the kernel (read/write/fsync/fallocate/lseek system calls) to the server and on to a
/// <see cref="MemoryBlockDevice"/>.</summary>
public abstract class FuseFileConformanceTests : BlockDeviceConformanceTests
{
    private readonly List<IBlockDevice> _backing = [];
    private MountedServer? _mounted;

    // Punch hole is served by write-zeroes, so a trimmed range reads back as zeroes.
    protected override bool TrimReadsZeroes => true;

    protected override Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize) =>
        ExposeAsync(new MemoryBlockDevice(length, sectorSize), sectorSize);

    protected override Task<IBlockDevice> CreateReadOnlyDeviceAsync(long length, int sectorSize) =>
        ExposeAsync(new MemoryBlockDevice(length, sectorSize, isReadOnly: true), sectorSize);

    protected override async Task CleanupAsync()
    {
        try
        {
            if (_mounted is not null)
            {
                await _mounted.DisposeAsync();
            }
        }
        finally
        {
            foreach (IBlockDevice device in _backing)
            {
                await device.DisposeAsync();
            }
        }
    }

    private async Task<IBlockDevice> ExposeAsync(MemoryBlockDevice backing, int sectorSize)
    {
        _mounted ??= await MountedServer.StartAsync();
        _backing.Add(backing);
        string name = $"device{_backing.Count}";
        _mounted.Server.AddFile(name, backing);
        return FileBlockDevice.Open(_mounted.PathOf(name), readOnly: backing.IsReadOnly, sectorSize);
    }
}
