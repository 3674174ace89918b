using BlockDriver.Testing;

namespace BlockDriver.Abstractions.Tests;

public sealed class FileBlockDeviceConformanceTests : BlockDeviceConformanceTests
{
    protected override bool TrimReadsZeroes => true;

    protected override Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize) =>
        Task.FromResult<IBlockDevice>(FileBlockDevice.Create(Temp.GetFilePath($"{Guid.NewGuid():N}.raw"), length, sectorSize));

    protected override async Task<IBlockDevice> CreateReadOnlyDeviceAsync(long length, int sectorSize)
    {
        string path = Temp.GetFilePath("read-only.raw");
        await using (FileBlockDevice writer = FileBlockDevice.Create(path, length, sectorSize))
        {
            await writer.WriteAsync(0, TestPatterns.Bytes(7, 4 << 20));
        }

        return FileBlockDevice.Open(path, readOnly: true, sectorSize);
    }
}
