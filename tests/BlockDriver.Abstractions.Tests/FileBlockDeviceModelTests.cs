using BlockDriver.Testing;
using Xunit.Abstractions;

namespace BlockDriver.Abstractions.Tests;

public sealed class FileBlockDeviceModelTests(ITestOutputHelper output) : BlockDeviceModelTests(output)
{
    protected override bool TrimReadsZeroes => true;

    protected override Task<IBlockDevice> CreateDeviceAsync(long length, int sectorSize) =>
        Task.FromResult<IBlockDevice>(FileBlockDevice.Create(Temp.GetFilePath("model.raw"), length, sectorSize));

    protected override async Task<IBlockDevice> ReopenAsync(IBlockDevice device)
    {
        var file = (FileBlockDevice)device;
        await file.DisposeAsync();
        return FileBlockDevice.Open(file.Path, readOnly: false, file.SectorSize);
    }
}
