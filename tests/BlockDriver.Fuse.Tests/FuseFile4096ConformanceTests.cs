namespace BlockDriver.Fuse.Tests;

[Collection(FuseTestCollection.Name)]
public sealed class FuseFile4096ConformanceTests : FuseFileConformanceTests
{
    protected override int SectorSize => 4096;
}
