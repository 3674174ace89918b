namespace BlockDriver.Fuse.Tests;

/// <summary>Every test class of this assembly runs in this collection, one at a time, and the fixture checks at the
/// end that none of them left a mount or a loop device behind.</summary>
[CollectionDefinition(Name)]
public sealed class FuseTestCollection : ICollectionFixture<LeakCheck>
{
    public const string Name = "fuse";

    /// <summary>Every temporary directory of these tests starts with this (under /tmp/blockdriver-).</summary>
    public const string TempPrefix = "fusetest";
}
