namespace BlockDriver.Fuse.Tests;

[Collection(FuseTestCollection.Name)]
public sealed class FuseFile512ConformanceTests : FuseFileConformanceTests;
